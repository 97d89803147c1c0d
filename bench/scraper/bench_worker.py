"""Scraper worker benchmark against bare Playwright and crawlee-python, on the same unit of work, in one run.

Run: ``.venv/bin/python bench/scraper/bench_worker.py [--units 30] [--rounds 2] [--concurrency 1 3]``

The unit of work (bench/scraper/unit.py) is what a creator's two jobs do: one profile scrape and one send
through the stand-in's JavaScript form, logging in through the form on a creator's first visit. The worker gets
them as two FIFO messages (scrape_profile, send_message) of that creator; bare Playwright (bare_unit.py) and
crawlee-python (crawlee_unit.py) run the same steps in one fresh context per unit. Everything is real and local
(moto server, redis-server, the stand-in, Debian's Chromium); each tool runs as its own process, in interleaved
rounds (the order rotates each round) so that the host's changing load hits all three alike. Per run:

- units/s: (N - 1) / (last unit done - first unit done), a unit being done when the stand-in records its send;
- CPU-s per unit: user + system CPU of the whole process tree (python, the Playwright driver, every Chromium
  process; sampled every 0.2 s, the last value seen per process) when the N-th send is recorded, over N. It
  includes start-up and logins, for every tool alike;
- PSS peak: summed PSS of the tree (/proc/<pid>/smaps_rollup), sampled every second;
- cold start: process spawn to the first unit done.
Figures are medians over the rounds. Nothing here asserts time; the machine may be loaded by others, so compare
the tools within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import the checkout's packages
sys.path.insert(0, str(HERE))

from unit import FAN, creator_of, unit_text  # noqa: E402

from localplane.services import MotoServer, RedisServer  # noqa: E402
from standin import StandinServer  # noqa: E402


@dataclass
class TreeMemory:
    """Memory of one process tree at one moment, in bytes, with a per-kind breakdown of PSS."""

    rss: int = 0
    pss: int = 0
    uss: int = 0
    processes: int = 0
    pss_by_kind: dict[str, int] = field(default_factory=dict)


def _kind(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "gone"
    exe = cmdline.split(b" ", 1)[0].rsplit(b"/", 1)[-1].decode(errors="replace")
    if "chrom" in exe:  # Chromium's children rewrite their command line into one space-separated string
        kind = re.search(rb"--type=([\w-]+)", cmdline)
        return f"chromium-{kind.group(1).decode() if kind else 'browser'}"
    if exe == "node":
        return "playwright-driver"
    return "worker" if "python" in exe else exe


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return found


def tree_memory(root: int) -> TreeMemory:
    """RSS, PSS and USS of `root` and all its descendants, from /proc/<pid>/smaps_rollup.

    Summed RSS counts every page shared between the processes (Chromium's binary, its zygote-forked
    renderers) once per process; summed PSS splits each shared page between the processes that map it, so it
    adds up to what the tree really occupies. USS (private pages only) is the floor.
    """
    memory = TreeMemory()
    for pid in _descendants(root):
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        values = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in rollup.splitlines()[1:]
                  if line.split()[-1] == "kB"}
        memory.processes += 1
        memory.rss += values.get("Rss", 0)
        memory.pss += values.get("Pss", 0)
        memory.uss += values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)
        kind = _kind(pid)
        memory.pss_by_kind[kind] = memory.pss_by_kind.get(kind, 0) + values.get("Pss", 0)
    return memory


class Plane:
    def __init__(self, moto: MotoServer) -> None:
        self.endpoint = moto.url
        kwargs: dict[str, Any] = {"endpoint_url": moto.url, "region_name": "us-east-1",
                                  "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
        self.sqs = boto3.client("sqs", **kwargs)
        self.s3 = boto3.client("s3", **kwargs)
        dlq = self.sqs.create_queue(QueueName=f"b-{uuid.uuid4().hex[:8]}-dlq.fifo",
                                    Attributes={"FifoQueue": "true"})["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue = self.sqs.create_queue(
            QueueName=f"b-{uuid.uuid4().hex[:8]}.fifo",
            Attributes={"FifoQueue": "true", "VisibilityTimeout": "300",  # as manifests/queues.yaml
                        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})},
        )["QueueUrl"]
        self.bucket = f"bench-{uuid.uuid4().hex[:8]}"
        self.s3.create_bucket(Bucket=self.bucket)
        sm = boto3.client("secretsmanager", **kwargs)
        for name, value in (("onlyfans/login", {"password": "standin-password"}),
                            ("onlyfans/api-key", {"api_key": "standin-api-key"})):
            with contextlib.suppress(sm.exceptions.ResourceExistsException):
                sm.create_secret(Name=name, SecretString=json.dumps(value))

    def send_units(self, units: int, creators: int) -> None:
        """Each unit as two messages of its creator's group: scrape_profile, then send_message."""
        bodies = []
        for unit in range(units):
            creator = creator_of(unit, creators)
            common = {"creator_id": creator, "user_id": FAN, "timestamp": datetime.now(UTC).isoformat()}
            bodies.append({**common, "action": "scrape_profile", "profile_url": f"https://x.invalid/u/{creator}",
                           "metadata": {"correlation_id": f"bench-p-{uuid.uuid4().hex}"}})
            bodies.append({**common, "action": "send_message", "message_content": unit_text(unit),
                           "metadata": {"correlation_id": f"bench-s-{uuid.uuid4().hex}"}})
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(i), "MessageBody": json.dumps(body), "MessageGroupId": body["creator_id"],
                        "MessageDeduplicationId": uuid.uuid4().hex}
                       for i, body in enumerate(bodies[start : start + 10])]
            self.sqs.send_message_batch(QueueUrl=self.queue, Entries=entries)


def worker_env(plane: Plane, redis: RedisServer, site: StandinServer, **extra: str) -> dict[str, str]:
    return {
        **os.environ, "AWS_ENDPOINT_URL": plane.endpoint, "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "REDIS_URL": redis.url,
        "HUNTAZE_WORKFLOWS_QUEUE_URL": plane.queue, "HUNTAZE_RESULTS_BUCKET": plane.bucket,
        "HUNTAZE_SITE_URL": site.url, "HUNTAZE_ADAPTER": "browser", "HUNTAZE_WAIT_TIME_S": "1",
        "HUNTAZE_HEALTH_PORT": "0", "HUNTAZE_HEALTH_HOST": "127.0.0.1", "HUNTAZE_LOG_LEVEL": "WARNING",
        **extra,
    }



CLK_TCK = os.sysconf("SC_CLK_TCK")


class TreeSampler(threading.Thread):
    """CPU-seconds and peak PSS of a process tree, sampled on a thread until `stop()`."""

    def __init__(self, root: int, interval_s: float = 0.2, pss_every_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval_s = interval_s
        self.pss_every_s = pss_every_s
        self.pss_peak = 0
        self._ticks: dict[tuple[int, str], int] = {}
        self._kinds: dict[tuple[int, str], str] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def sample_cpu(self) -> float:
        with self._lock:
            for pid in _descendants(self.root):
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                # utime, stime are fields 14 and 15 of stat; starttime (22) tells a reused pid apart
                key = (pid, fields[19])
                self._ticks[key] = int(fields[11]) + int(fields[12])
                kind = _kind(pid).split("-")[0]  # worker (python), playwright (node), chromium
                if kind in ("worker", "playwright", "chromium") or key not in self._kinds:
                    self._kinds[key] = kind  # the last name seen: a wrapper (sh) execs Chromium
            return sum(self._ticks.values()) / CLK_TCK

    def cpu_by_kind(self) -> dict[str, float]:
        with self._lock:
            out: dict[str, float] = {}
            for key, ticks in self._ticks.items():
                kind = self._kinds.get(key, "?")
                out[kind] = out.get(kind, 0.0) + ticks / CLK_TCK
            return out

    def run(self) -> None:
        next_pss = 0.0
        while not self._stopped.is_set():
            self.sample_cpu()
            if time.monotonic() >= next_pss:
                self.pss_peak = max(self.pss_peak, tree_memory(self.root).pss)
                next_pss = time.monotonic() + self.pss_every_s
            self._stopped.wait(self.interval_s)

    def stop(self) -> None:
        self._stopped.set()


@dataclass
class Figures:
    tool: str
    concurrency: int
    units_per_s: float
    cpu_s_per_unit: float
    pss_peak_mib: float
    cold_start_s: float
    load: float
    extra: dict[str, Any] = field(default_factory=dict)


class Bench:
    def __init__(self, moto: MotoServer, redis: RedisServer, site: StandinServer, units: int, creators: int) -> None:
        self.plane = Plane(moto)
        self.redis = redis
        self.site = site
        self.units = units
        self.creators = creators

    def _command(self, tool: str, concurrency: int) -> tuple[list[str], dict[str, str]]:
        if tool == "worker":
            self.plane.send_units(self.units, self.creators)
            env = worker_env(self.plane, self.redis, self.site, HUNTAZE_CONCURRENCY=str(concurrency),
                             HUNTAZE_LOG_LEVEL="WARNING")
            return [sys.executable, "-m", "scraper"], env
        script = {"bare": "bare_unit.py", "crawlee": "crawlee_unit.py"}[tool]
        return ([sys.executable, str(HERE / script), "--base", self.site.url, "--units", str(self.units),
                 "--concurrency", str(concurrency), "--creators", str(self.creators)],
                {**os.environ, "CRAWLEE_STORAGE_DIR": str(Path("/tmp") / f"crawlee-{uuid.uuid4().hex[:8]}")})

    def run(self, tool: str, concurrency: int) -> Figures:
        self.site.reset()
        self.redis_flush()
        command, env = self._command(tool, concurrency)
        load = os.getloadavg()[0]
        spawned = time.time()
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        deadline = time.monotonic() + 900
        try:
            while len(self.site.state.messages()) < self.units:
                if proc.poll() is not None and len(self.site.state.messages()) < self.units:
                    raise SystemExit(f"{tool} exited early ({proc.returncode}): "
                                     f"{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
                if time.monotonic() > deadline:
                    raise SystemExit(f"{tool} timed out")
                time.sleep(0.05)
            cpu_s = sampler.sample_cpu()
            by_kind = {k: round(v / self.units, 3) for k, v in sampler.cpu_by_kind().items()}
        finally:
            sampler.stop()
            if tool == "worker":
                proc.terminate()
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        sends = self.site.state.messages()
        texts = [m.text for m in sends]
        assert sorted(texts) == sorted(unit_text(u) for u in range(self.units)), f"{tool}: wrong sends"
        times = sorted(m.received_at.timestamp() for m in sends)
        return Figures(tool, concurrency, (len(times) - 1) / max(times[-1] - times[0], 1e-6), cpu_s / self.units,
                       sampler.pss_peak / 2**20, times[0] - spawned, load, {"cpu_s_per_unit_by_process": by_kind})

    def redis_flush(self) -> None:
        import redis as redis_client

        client = redis_client.Redis.from_url(self.redis.url)
        client.flushall()
        client.close()


def report(runs: list[Figures]) -> None:
    print("\nmedian over rounds (units/s higher is better; CPU-s/unit, PSS and cold start lower):")
    print(f"{'tool':<8} {'c':>2} {'runs':>4} {'units/s':>8} {'CPU-s/unit':>11} {'PSS peak MiB':>13} "
          f"{'cold start s':>13} {'load':>6}")
    table: dict[tuple[str, int], dict[str, float]] = {}
    for tool in ("worker", "bare", "crawlee"):
        for c in sorted({r.concurrency for r in runs}):
            mine = [r for r in runs if r.tool == tool and r.concurrency == c]
            if not mine:
                continue
            row = {k: statistics.median(getattr(r, k) for r in mine)
                   for k in ("units_per_s", "cpu_s_per_unit", "pss_peak_mib", "cold_start_s", "load")}
            table[(tool, c)] = row
            print(f"{tool:<8} {c:>2} {len(mine):>4} {row['units_per_s']:>8.2f} {row['cpu_s_per_unit']:>11.2f} "
                  f"{row['pss_peak_mib']:>13.0f} {row['cold_start_s']:>13.2f} {row['load']:>6.1f}")
    print("\ntargets: CPU per unit <= 1.1x bare; units/s >= crawlee; PSS peak < 800 MiB; cold start <= bare + 1 s")
    for c in sorted({r.concurrency for r in runs}):
        worker, bare, crawlee = (table.get((t, c)) for t in ("worker", "bare", "crawlee"))
        if worker and bare:
            print(f"  c={c}: CPU worker/bare {worker['cpu_s_per_unit'] / bare['cpu_s_per_unit']:.2f}x; cold start "
                  f"worker - bare {worker['cold_start_s'] - bare['cold_start_s']:+.2f} s; worker PSS peak "
                  f"{worker['pss_peak_mib']:.0f} MiB")
        if worker and crawlee:
            print(f"  c={c}: units/s worker/crawlee {worker['units_per_s'] / crawlee['units_per_s']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=30, help="units per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--creators", type=int, default=6)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--tools", nargs="+", default=["worker", "bare", "crawlee"])
    parser.add_argument("--out", help="append each run's figures as a JSON line to this file")
    args = parser.parse_args()
    runs: list[Figures] = []
    with MotoServer() as moto, RedisServer() as redis, StandinServer() as site:
        bench = Bench(moto, redis, site, args.units, args.creators)
        for rnd in range(args.rounds):
            tools = args.tools[rnd % len(args.tools):] + args.tools[: rnd % len(args.tools)]
            for c in args.concurrency:
                for tool in tools:
                    figures = bench.run(tool, c)
                    runs.append(figures)
                    print(f"round {rnd + 1} {tool:<8} c={c}: {figures.units_per_s:.2f} units/s, "
                          f"{figures.cpu_s_per_unit:.2f} CPU-s/unit, PSS peak {figures.pss_peak_mib:.0f} MiB, "
                          f"cold start {figures.cold_start_s:.2f} s (load {figures.load:.1f}); CPU-s/unit by "
                          f"process: {figures.extra['cpu_s_per_unit_by_process']}", flush=True)
                    if args.out:
                        with open(args.out, "a") as out:
                            out.write(json.dumps(figures.__dict__) + "\n")
    report(runs)


if __name__ == "__main__":
    main()
