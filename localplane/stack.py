"""The embedded local stack behind `huntazectl up`: moto, Redis, the stand-in platform, and its run state.

`LocalStack` starts the servers on free loopback ports and exports the standard environment (AWS_ENDPOINT_URL,
region, dummy credentials, REDIS_URL) so the controller, the gate runtime and the scraper tasks all reach them
the same way they would reach AWS. Everything it starts is stopped on exit, children first; ``on_step`` hears
each start and stop step (`huntazectl up` shows them as progress).

`RunState` is what a running `up` writes to ``<run dir>/state.json`` (endpoints, the shell environment, the
process ids it owns); ``.huntaze/current`` names the run dir of the stack that is up. `huntazectl env` and
`huntazectl down` read them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis

from common import redis_keys
from common.aws import clear_client_cache
from localplane.services import MotoServer, RedisServer
from standin.server import StandinServer

LOCAL_REGION = "us-east-1"
STATE_FILE = "state.json"
CURRENT_FILE = "current"


def _quiet(_: str) -> None:
    return None


@dataclass
class LocalStack:
    run_dir: Path
    on_step: Callable[[str], None] = _quiet
    moto: MotoServer = field(init=False)
    redis: RedisServer = field(init=False)
    site: StandinServer = field(init=False)

    def __enter__(self) -> Self:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.on_step("starting the AWS APIs (moto server)")
        self.moto = MotoServer(workdir=self.run_dir)
        self.moto.start()
        self.on_step("starting redis-server")
        self.redis = RedisServer(workdir=self.run_dir)
        self.redis.start()
        # A Redis this stack just created holds no admissions: say so, or the limiter (which cannot tell a new
        # Redis from one that lost its memory) counts the first window as full (common.redis_keys).
        redis.Redis.from_url(self.redis.url).set(redis_keys.LIMITER_EPOCH, "0", nx=True)
        self.on_step("starting the stand-in creator platform")
        self.site = StandinServer()
        self.site.start()
        os.environ.update(self.shell_env())
        clear_client_cache()
        return self

    def aws_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.moto.url,
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            # Moto accepts any credentials. Not a word that appears in names: the controller masks the value of
            # every *SECRET* variable in its journal, and "local" turned "huntaze-local" into "huntaze-***".
            "AWS_ACCESS_KEY_ID": "moto-local-key-id",
            "AWS_SECRET_ACCESS_KEY": "moto-local-not-a-secret",
        }

    def shell_env(self) -> dict[str, str]:
        """What a shell needs to use this stack: the AWS variables, Redis, the stand-in site, the env name."""
        return self.aws_env() | {"REDIS_URL": self.redis.url, "HUNTAZE_SITE_URL": self.site.url, "HUNTAZE_ENV": "local"}

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.on_step("stopping the stand-in platform")
        self.site.stop()
        self.on_step("stopping redis-server")
        self.redis.close()
        self.on_step("stopping the moto server")
        self.moto.close()


def apply_argv(repo: Path, stack: LocalStack, overlays: tuple[Path, ...] = ()) -> list[str]:
    """The `huntazectl apply` arguments that deploy the repo's stack to this local stack (`up`, tests, benches)."""
    argv = ["apply", "-f", str(repo / "manifests"), "-f", str(repo / "ecs-specs"), "--env", "local",
            "--var", f"REDIS_URL={stack.redis.url}", "--var", f"SITE_URL={stack.site.url}"]
    for overlay in overlays:
        argv += ["--overlay", str(overlay)]
    return argv


@dataclass
class RunState:
    """A running `up`: ``pid`` is the `up` process; ``processes`` maps each pid it owns to its start time."""

    run_dir: str
    pid: int
    phase: str
    env: dict[str, str] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pid_started: int | None = None  # the kernel's start time of `pid`, so a reused pid is never mistaken for it

    def alive(self) -> bool:
        """The `up` process that wrote this state still runs (same pid, same start time) and is not down."""
        started = process_start_time(self.pid)
        return self.phase != "down" and started is not None and started == (self.pid_started or started)

    def save(self) -> None:
        path = Path(self.run_dir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))
        tmp.replace(path)  # readers never see half a file

    @classmethod
    def load(cls, run_dir: Path) -> RunState | None:
        try:
            doc = json.loads((run_dir / STATE_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return cls(**doc)


def mark_current(base: Path, run_dir: Path) -> None:
    base.mkdir(parents=True, exist_ok=True)
    (base / CURRENT_FILE).write_text(str(run_dir.resolve()) + "\n")


def current_run_dir(base: Path) -> Path | None:
    try:
        return Path((base / CURRENT_FILE).read_text().strip())
    except OSError:
        return None


def clear_current(base: Path, run_dir: Path) -> None:
    if current_run_dir(base) == run_dir.resolve():
        with contextlib.suppress(OSError):
            (base / CURRENT_FILE).unlink()


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def descendants(root: int) -> dict[int, dict[str, Any]]:
    """Every live process below ``root``, with its start time and command (for `down` to check later)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found: dict[int, dict[str, Any]] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        started = process_start_time(pid)
        if started is None:
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        found[pid] = {"started": started, "cmd": cmd[:200]}
        todo.extend(children.get(pid, []))
    return found


def still_running(processes: dict[str, dict[str, Any]]) -> dict[int, str]:
    """The recorded processes that are still the same process (pid and start time match)."""
    return {int(pid): str(info["cmd"]) for pid, info in processes.items()
            if info.get("started") is not None and process_start_time(int(pid)) == info["started"]}
