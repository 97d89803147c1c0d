"""`apply` as Terraform behaves (issue 12 item 1), as real processes against moto: Ctrl-C mid-apply finishes the
call in flight and prints what was done and not done (checked against what moto holds), a second Ctrl-C stops at
once, and two applies share one stack lock (the second refuses naming the holder, or waits with --lock-timeout).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.operator.aws_proxy import AwsProxy, Fault
from tests.operator.conftest import REPO, SMALL_STACK, wait_until

FULL_STACK = ["-f", str(REPO / "manifests"), "-f", str(REPO / "ecs-specs"), "--env", "local",
              "--var", "REDIS_URL=redis://127.0.0.1:9/0", "--var", "SITE_URL=http://127.0.0.1:9/site"]


def _huntazectl(endpoint: str, *argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCOUNT_ID": "123456789012", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "controller", *argv], env=env, text=True, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def _summary(stderr: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {"done": set(), "partial": set(), "not done": set()}
    for line in stderr.splitlines():
        for state, found in out.items():
            if line.startswith(f"  {state}"):
                found.add(line[len(state) + 2:].split()[0])
    return out


@pytest.mark.soak
def test_apply_sigint_mid_apply_prints_done_and_not_done_matching_moto(aws: str) -> None:
    proxy = AwsProxy(aws).start()
    try:
        proc = _huntazectl(proxy.url, "apply", *FULL_STACK)
        wait_until(lambda: len(proxy.resource_writes()) >= 6 or proc.poll() is not None, 240, "apply to be writing")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proxy.stop()
    assert proc.returncode == 130, out + err
    assert "SIGINT: finishing the AWS call in flight" in err
    states = _summary(err)
    assert states["done"] and states["not done"], err
    # What moto holds, through the reconciler's own eyes: a dry run lists what would still be created.
    plan = _huntazectl(aws, "apply", *FULL_STACK, "--dry-run", "-o", "json")
    plan_out, _ = plan.communicate(timeout=240)
    missing = {r["resource"] for r in json.loads(plan_out) if r["action"] == "created"}
    assert not (missing & states["done"]), (missing & states["done"], err)
    assert states["not done"] <= missing | states["partial"], (states["not done"] - missing, err)


def test_apply_second_writer_refused_naming_holder_then_waits_with_lock_timeout(aws: str) -> None:
    proxy = AwsProxy(aws).start()
    release = threading.Event()
    proxy.faults.append(Fault("sqs", "", "op-other", operations=("CreateQueue",), times=1, hold=release))
    small = ["-f", str(SMALL_STACK), "--env", "local"]
    try:
        first = _huntazectl(proxy.url, "apply", *small)
        wait_until(lambda: proxy.faults[0].hits == 1 or first.poll() is not None, 120, "the first apply to write")
        refused = _huntazectl(aws, "apply", *small)
        _, refused_err = refused.communicate(timeout=120)
        assert refused.returncode == 2, refused_err
        assert "is locked by apply:" in refused_err and "since 20" in refused_err and "force-unlock" in refused_err
        waiting = _huntazectl(aws, "apply", *small, "--lock-timeout", "3m")
        wait_until(lambda: Path("/proc", str(waiting.pid)).exists(), 5, "the waiting apply to start")
        release.set()
        first_out, first_err = first.communicate(timeout=120)
        assert first.returncode == 0, first_out + first_err
        waited_out, waited_err = waiting.communicate(timeout=180)
    finally:
        release.set()
        proxy.stop()
    assert waiting.returncode == 0, waited_out + waited_err
    assert "5 unchanged" in waited_out  # it ran after the first one finished, and found nothing to do


def test_apply_second_interrupt_stops_at_once_and_says_so(aws: str, tmp_path: Path) -> None:
    proxy = AwsProxy(aws).start()
    release = threading.Event()
    hold = Fault("sqs", "", "op-", operations=("CreateQueue",), times=1, hold=release)
    proxy.faults.append(hold)
    err_file = tmp_path / "stderr"
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url, "AWS_ACCOUNT_ID": "123456789012", "PYTHONPATH": str(REPO)}
    try:
        with err_file.open("w") as err_out:
            proc = subprocess.Popen([sys.executable, "-m", "controller", "apply", "-f", str(SMALL_STACK), "--env",
                                     "local"], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err_out)
        wait_until(lambda: hold.hits == 1 or proc.poll() is not None, 120, "a create call in flight")
        proc.send_signal(signal.SIGINT)  # the held call cannot finish: only a second Ctrl-C ends it
        wait_until(lambda: "finishing the AWS call in flight" in err_file.read_text(), 30, "the first interrupt")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    finally:
        release.set()
        proxy.stop()
    err = err_file.read_text()
    assert code == 130, err
    assert "SIGINT again: stopping NOW" in err
