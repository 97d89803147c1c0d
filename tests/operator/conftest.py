"""Fixtures for the operator tests: controller processes (real `huntazectl controller run`), each behind its own
recording/fault-injecting proxy to the moto server, with their journals, and condition waits.

- `controllers`: start controller processes (`start(name, *extra_args)`); all are killed at the end of the test.
- `stack_copy`: a fresh copy of tests/operator/stacks/small (tests edit specs in it).
- `sqs_attr` / `set_sqs_attr`: read and "console-edit" a queue attribute in moto directly (not via the proxy).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from common.aws import client
from controller.journal import JournalRecord, read_file_records
from tests.operator.aws_proxy import AwsProxy

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SMALL_STACK = HERE / "stacks" / "small"
# Time-scaled settings for processes on a loaded 2-core machine (production: 60 s interval, 30 s lease).
INTERVAL_S = 4.0
LEASE_TTL_S = 6.0
# A standby's attempt period to take the lease (`Operator._heartbeat`'s default: ttl/10, 0.2..2 s).
STANDBY_POLL_S = max(0.2, min(2.0, LEASE_TTL_S / 10))
# Issue 10's promises as bounds, with room for a loaded machine (checked with two CPU burners running):
# a console edit is corrected within one interval (+ its 10 % jitter) plus 5 s, the benchmark's target;
CORRECTION_S = INTERVAL_S * 1.1 + 5
# a killed leader's lease is taken within its ttl (it expired by then), plus one standby poll and 2 s of load.
HANDOVER_S = LEASE_TTL_S + STANDBY_POLL_S + 2


def wait_until(check: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


@dataclass
class ControllerProcess:
    name: str
    proc: subprocess.Popen[bytes]
    proxy: AwsProxy
    journal: Path
    log: Path
    started: float = field(default_factory=time.monotonic)

    def records(self) -> list[JournalRecord]:
        return read_file_records(self.journal) if self.journal.exists() else []

    def cycles(self) -> list[JournalRecord]:
        return [r for r in self.records() if r.type == "cycle"]

    def leading(self) -> bool:
        events = [r.action for r in self.records() if r.type == "lease"]
        return bool(events) and events[-1] == "gained"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait_exit(self, timeout_s: float = 60) -> int:
        return self.proc.wait(timeout=timeout_s)


@pytest.fixture
def stack_copy(tmp_path: Path) -> Path:
    target = tmp_path / "specs"
    shutil.copytree(SMALL_STACK, target)
    return target


@pytest.fixture
def controllers(aws: str, tmp_path: Path) -> Iterator[Callable[..., ControllerProcess]]:
    started: list[ControllerProcess] = []

    def start(name: str, *extra: str, specs: Path | None = None, interval_s: float = INTERVAL_S,
              env: dict[str, str] | None = None) -> ControllerProcess:
        proxy = AwsProxy(aws).start()
        journal = tmp_path / f"journal-{name}.jsonl"
        log = tmp_path / f"{name}.log"
        child_env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url, "HUNTAZE_CONTROLLER_ID": name,
                     "AWS_ACCOUNT_ID": "123456789012", "PYTHONPATH": str(REPO), **(env or {})}
        argv = [sys.executable, "-m", "controller", "controller", "run", "-f", str(specs or SMALL_STACK),
                "--env", "local", "--interval", f"{interval_s}s", "--lease-ttl", f"{LEASE_TTL_S}s",
                "--journal-file", str(journal), "--watch-poll", "0.5s", *extra]
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, env=child_env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
                                    stdin=subprocess.DEVNULL)
        found = ControllerProcess(name, proc, proxy, journal, log)
        started.append(found)
        return found

    yield start
    for found in started:
        if found.proc.poll() is None:
            found.proc.send_signal(signal.SIGCONT)
            found.proc.kill()
            found.proc.wait(timeout=10)
        found.proxy.stop()


def apply_stack(specs: Path = SMALL_STACK, *extra: str) -> int:
    """`huntazectl apply` in-process (creates what the controller will keep reconciled)."""
    from controller.cli import main

    return main(["apply", "-f", str(specs), "--env", "local", "--var", "AWS_ACCOUNT_ID=123456789012", *extra])


def queue_url(name: str) -> str:
    return str(client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def sqs_attr(name: str, attribute: str) -> str:
    attrs = client("sqs").get_queue_attributes(QueueUrl=queue_url(name), AttributeNames=[attribute])
    return str(attrs["Attributes"][attribute])


def set_sqs_attr(name: str, attribute: str, value: str) -> None:
    """A console edit: straight to moto, not through any controller's proxy."""
    client("sqs").set_queue_attributes(QueueUrl=queue_url(name), Attributes={attribute: value})
