"""`huntazectl apply --wait` through main(): it prints the rollout it started and follows it to its end, exit 1
when the engine rolled it back, 0 when it completed.

The engines are the local plane's own, run beside the command in a thread: the service runner's rolling
deployment with real task processes (`tests.helpers.service_release`), and the traffic shifter with the
Canary10Percent5Minutes schedule time-scaled by 60 (5 minutes -> 5 s). Moto over HTTP.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from common.aws import client
from controller.cli import main
from localplane.deployments import COMPLETED
from localplane.traffic_shifter import TrafficShifter
from tests.helpers.service_release import drive, release_stack, runner, write_stack

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
ALARM = "fn-errors"
FUNCTION = """\
apiVersion: huntaze.io/v1
kind: Function
metadata: {{name: fn}}
spec:
  code: {{packages: [{package}]}}
  handler: tinygate.handler.handler
  roleArn: {role}
  deployment: {{strategy: Canary10Percent5Minutes, alarms: [{alarm}]}}
"""


@contextmanager
def in_background(step: Callable[[], Any], period_s: float = 0.2) -> Iterator[None]:
    """``step()`` every ``period_s`` in a thread while the block runs: the local plane beside the command."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            step()
            stop.wait(period_s)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


def apply(capsys: pytest.CaptureFixture[str], specs: Path, *extra: str) -> tuple[int, str]:
    code = main(["apply", "-f", str(specs), "--env", "local", "--var", "AWS_ACCOUNT_ID=123456789012", *extra])
    return code, capsys.readouterr().out


def test_apply_wait_follows_a_service_release_rolled_back_then_a_good_one(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs, script = release_stack(tmp_path, "good-1")
    assert apply(capsys, specs)[0] == 0
    plane = runner(tmp_path)
    try:
        drive(plane, lambda: plane.deployment and plane.deployment.rollout_state == COMPLETED, 120, "v1 running")
        wait = ("--wait", "--wait-timeout", "240s", "--run-dir", str(tmp_path / "run"))
        write_stack(specs, script, "bad")
        with in_background(plane.sync):
            code, out = apply(capsys, specs, *wait)
        assert code == 1, out
        assert ("rollout Service/hold-svc: hold-task:1 -> hold-task:2 (ECS rolling update 100/200%, circuit "
                "breaker on, rollback on)") in out
        assert "  Service/hold-svc: IN_PROGRESS (" in out  # a progress line while it rolls
        assert ("Service/hold-svc: rollout ROLLED_BACK: circuit breaker: 3 new task(s) in a row failed to start or "
                "pass their health check (threshold 3); rolled back to ") in out
        assert "see `huntazectl rollout status service hold-svc`" in out

        write_stack(specs, script, "good-3")
        with in_background(plane.sync):
            code, out = apply(capsys, specs, *wait)
        assert code == 0, out
        assert "rollout Service/hold-svc: hold-task:1 -> hold-task:3 (" in out
        assert "Service/hold-svc: rollout completed (hold-task:3)" in out
    finally:
        plane.stop_all()


def test_apply_without_wait_prints_the_rollout_and_how_to_follow_it(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs, script = release_stack(tmp_path, "good-1")
    assert apply(capsys, specs)[0] == 0
    write_stack(specs, script, "good-2")
    code, out = apply(capsys, specs)
    assert code == 0, out
    assert "rollout Service/hold-svc: hold-task:1 -> hold-task:2 (ECS rolling update" in out
    assert "follow: huntazectl rollout status service hold-svc (or apply --wait)" in out
    code, out = apply(capsys, specs, "--wait")  # nothing changed: no rollout, nothing to wait for
    assert code == 0 and "rollout " not in out, out


def _function_stack(tmp_path: Path, package: Path) -> Path:
    role = client("iam").create_role(RoleName="fn-role", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    client("cloudwatch").put_metric_alarm(
        AlarmName=ALARM, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    specs = tmp_path / "fn-specs"
    specs.mkdir()
    (specs / "fn.yaml").write_text(FUNCTION.format(package=package, role=role, alarm=ALARM))
    return specs


@pytest.mark.parametrize("alarm_fires", [False, True], ids=["good-canary", "bad-canary"])
def test_apply_wait_follows_a_gate_canary_to_completion_or_rollback(
    aws: str, tmp_path: Path, package: Path, capsys: pytest.CaptureFixture[str], alarm_fires: bool
) -> None:
    specs = _function_stack(tmp_path, package)
    assert apply(capsys, specs)[0] == 0
    (package / "handler.py").write_text("def handler(event, context):\n    return {'batchItemFailures': []}\n# 2\n")
    if alarm_fires:
        client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="errors")
    shifter = TrafficShifter(scale=lambda: 60.0)
    with in_background(shifter.tick):
        code, out = apply(capsys, specs, "--wait", "--wait-timeout", "180s")
    # The weights it shows are those read right after the write: the shifter may have moved them already.
    assert "rollout Function/fn: version 1 -> version 2 (Canary10Percent5Minutes, now v" in out, out
    assert "; alarms fn-errors)" in out
    if alarm_fires:
        assert code == 1, out
        assert "Function/fn: rollout ROLLED_BACK: v1 100%: alarm fn-errors in ALARM" in out
    else:
        assert code == 0, out
        assert "  Function/fn: COMPLETED (v2 100%: Canary10Percent5Minutes: all traffic on version 2)" in out
        assert "Function/fn: rollout completed (version 2)" in out
