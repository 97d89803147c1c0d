"""Fixtures for the controller tests: run `huntazectl` in-process, count AWS calls, build stacks.

- `ctl`: run a huntazectl command line, returning (exit code, stdout, stderr).
- `aws_calls`: every AWS call made through `common.aws.client`, recorded by a botocore ``before-call`` hook
  registered on the shared boto3 session (clients inherit the session's hooks when they are created).
- `stack_dir`: a fresh copy of tests/controller/stacks/basic (tests edit manifests in it).
- `full_stack`: the repo's whole stack (manifests/ + ecs-specs/) and the arguments that load it.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import common.aws
from controller.cli import main
from controller.errors import SpecError
from controller.model import Manifest
from controller.specs import LoadedStack, LoadOptions, load

HERE = Path(__file__).parent
BASIC_STACK = HERE / "stacks" / "basic"
WRITE_PREFIXES = (
    "Create", "Put", "Update", "Delete", "Register", "Deregister", "Tag", "Untag", "Set", "Add", "Remove",
    "Attach", "Detach", "Publish", "Send", "Subscribe", "Unsubscribe", "Associate", "Disassociate", "Restore",
    "Purge", "Change", "Start", "Stop", "Enable", "Disable", "Modify", "Invoke",
)


def is_write(operation: str) -> bool:
    return operation.startswith(WRITE_PREFIXES)


@dataclass
class CallLog:
    calls: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, model: Any, **_: Any) -> None:
        with self.lock:
            self.calls.append((model.service_model.service_name, model.name))

    @property
    def writes(self) -> list[tuple[str, str]]:
        """Writes to resources: the stack lock's item updates (DynamoDB UpdateItem, `controller.lease`) are not."""
        return [c for c in self.calls if is_write(c[1]) and c != ("dynamodb", "UpdateItem")]

    def clear(self) -> None:
        with self.lock:
            self.calls.clear()


def install_call_log() -> CallLog:
    """Hook every client made from now on by `common.aws.client` (the cache must be empty)."""
    log = CallLog()
    common.aws.clear_client_cache()
    common.aws.add_event_hook("before-call", log.record)
    return log


@pytest.fixture
def aws_calls(aws: str) -> CallLog:
    return install_call_log()


@pytest.fixture
def offline_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[CallLog]:
    """AWS pointed at a closed port, with every attempted call recorded (specs errors must make none)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ACCOUNT_ID", raising=False)
    log = install_call_log()
    yield log
    common.aws.clear_client_cache()


@pytest.fixture
def ctl(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def stack_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "stack"
    shutil.copytree(BASIC_STACK, target)
    monkeypatch.setenv("T_REDIS_AUTH_TOKEN", "not-a-real-token-value-7f3a")
    return target



REPO = HERE.parents[1]
FULL_STACK_DIRS = [REPO / "manifests", REPO / "ecs-specs"]
_UNKNOWN_VARIABLE = re.compile(r"unknown variable \$\{(\w+)\}")


@dataclass
class FullStack:
    """The whole stack of the repo (manifests/ + ecs-specs/) and the huntazectl arguments that load it."""

    loaded: LoadedStack
    args: list[str]  # -f ... --var ...

    @property
    def manifests(self) -> list[Manifest]:
        return self.loaded.manifests

    def kinds(self) -> set[str]:
        return {m.kind for m in self.manifests}


def load_full_stack() -> FullStack:
    """Load it; deploy-time variables other than ENV/AWS_* (a Redis URL, a site URL) get placeholders."""
    paths = [str(p) for p in FULL_STACK_DIRS if p.is_dir()]
    assert any(Path(p).rglob("*.yaml") for p in paths), "manifests/ holds no specs yet"
    base = {"ENV": "local", "AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID": "123456789012"}
    extra: dict[str, str] = {}
    for _ in range(5):
        try:
            stack = load(LoadOptions(paths, "local", {**base, **extra}))
            break
        except SpecError as exc:
            names = {m for p in exc.problems for m in _UNKNOWN_VARIABLE.findall(p)} - set(extra)
            if not names:
                raise
            extra.update({n: f"http://127.0.0.1:9/{n.lower()}" for n in names})
    args = [a for p in paths for a in ("-f", p)] + [a for k, v in extra.items() for a in ("--var", f"{k}={v}")]
    return FullStack(stack, args)


@pytest.fixture
def full_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FullStack:
    """The full stack, with test values for secrets that are created from environment variables. The working
    directory is an unrelated temp dir: huntazectl must not depend on being run from the repository root."""
    monkeypatch.chdir(tmp_path)
    stack = load_full_stack()
    for manifest in stack.manifests:
        source = getattr(manifest.spec, "value_from", None)
        if manifest.kind == "Secret" and source is not None and getattr(source, "env", None):
            monkeypatch.setenv(source.env, '{"token": "test-token", "url": "redis://127.0.0.1:9/0"}')
    return stack
