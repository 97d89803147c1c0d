"""A gate release rolled back (by the local plane's traffic shifter on an alarm, or by `rollout undo function`) is
held by the Function kind: the controller does not publish or shift the same code again until the spec changes.

Moto over HTTP; the shifter is the local plane's own (`localplane.traffic_shifter`); time moves with freezegun,
so the canary's schedule (5 minutes) is long past when the controller looks again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from common import aws
from controller.diff import Verdict
from localplane.traffic_shifter import TrafficShifter

QUEUE_URL = "http://localhost/123456789012/huntaze-hybrid-workflows.fifo"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
ALARM = "huntaze-gate-errors"
START = datetime(2026, 12, 2, 8, 0, 0, tzinfo=UTC)
# freezegun leaves these alone: botocore's and urllib3's clocks must keep running for HTTP to moto.
IGNORE = ["botocore", "urllib3", "boto3", "s3transfer"]


@pytest.fixture
def role(kit: Any) -> str:
    arn: str = aws.client("iam").create_role(RoleName="gate", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    kit.resolve("Role", "huntaze-gate", arn=arn)
    return arn


def _spec(package: Path, **extra: Any) -> dict[str, Any]:
    return {
        "functionName": "huntaze-rate-limiter",
        "code": {"packages": [str(package)]},
        "handler": "tinygate.handler.handler",
        "roleRef": "huntaze-gate",
        "timeout": 30,
        "environment": {"HUNTAZE_RATE_LIMITS": "global=10/60s"},
        "deployment": {"strategy": "Canary10Percent5Minutes", "alarms": [ALARM]},
        **extra,
    }


def _apply_held(kit: Any, manifest: Any) -> str:
    """Apply through the real reconciler; the resource is held: unchanged, with the hold's sentence."""
    from controller.reconciler import Action, ApplyOptions, Reconciler

    [result] = Reconciler(kit.ctx).apply(kit.stack_of(manifest), ApplyOptions(concurrency=1))
    assert result.action is Action.UNCHANGED and not result.failed, result
    assert result.message.startswith("held: rolled back from "), result.message
    return result.message


def _alias() -> dict[str, Any]:
    found: dict[str, Any] = aws.client("lambda").get_alias(FunctionName="huntaze-rate-limiter", Name="live")
    return found


def _bad_release_rolled_back(kit: Any, package: Path) -> Any:
    """Version 1 live; version 2 (new code) released by canary at START and rolled back by the shifter's alarm."""
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName=ALARM, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
                                Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    m = kit.manifest("Function", "huntaze-rate-limiter", _spec(package))
    kit.reconcile(m)
    (package / "handler.py").write_text("def handler(event, context):\n    raise RuntimeError('bad release')\n")
    with freeze_time(START, ignore=IGNORE):
        kit.reconcile(m)
    assert _alias()["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.1}
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="the canary fails every batch")
    TrafficShifter().tick(now=START + timedelta(minutes=1))
    alias = _alias()
    assert alias["FunctionVersion"] == "1" and not alias["RoutingConfig"]["AdditionalVersionWeights"]
    assert json.loads(alias["Description"])["state"] == "ROLLED_BACK"
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="back on version 1")
    return m


def test_function_rolled_back_by_the_shift_is_held_not_released_again(kit: Any, package: Path, role: str) -> None:
    m = _bad_release_rolled_back(kit, package)
    with freeze_time(START + timedelta(minutes=30), ignore=IGNORE):  # long after the canary's schedule ended
        delta = kit.delta(m)
        assert not delta.has_drift, delta.as_dict()
        [held] = delta.held
        assert held.path == "release" and held.verdict is Verdict.HELD
        assert held.reason.startswith("held: rolled back from version 2 (alarm huntaze-gate-errors in ALARM;")
        assert "next: fix the Function spec (code or configuration) and apply" in held.reason
        writes = kit.writes("lambda")
        _apply_held(kit, m)
        assert writes.calls == []  # no PublishVersion, no UpdateAlias: the old version keeps serving
    assert _alias()["FunctionVersion"] == "1"


def test_function_held_release_goes_out_once_the_spec_changes(kit: Any, package: Path, role: str) -> None:
    m = _bad_release_rolled_back(kit, package)
    (package / "handler.py").write_text("def handler(event, context):\n    return {'batchItemFailures': []}\n# v3\n")
    delta = kit.delta(m)
    assert delta.changed_fields == ["codeSha256", "release"] and not delta.held, delta.as_dict()
    writes = kit.writes("lambda")
    kit.reconcile(m)
    assert writes.calls == ["UpdateFunctionCode", "PublishVersion", "UpdateAlias"]
    alias = _alias()
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"3": 0.1}
    assert json.loads(alias["Description"])["state"] == "SHIFTING"


def test_function_undone_by_on_call_is_held(kit: Any, package: Path, role: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from controller.cli import main

    m = kit.manifest("Function", "huntaze-rate-limiter", _spec(package, deployment={"strategy": "AllAtOnce"}))
    kit.reconcile(m)
    (package / "handler.py").write_text("def handler(event, context):\n    return {'batchItemFailures': []}\n# v2\n")
    kit.reconcile(m)
    assert _alias()["FunctionVersion"] == "2"
    assert main(["rollout", "undo", "function", "huntaze-rate-limiter"]) == 0
    assert "the controller holds" in capsys.readouterr().out
    [held] = kit.delta(m).held
    assert "rollout undo: version 1 again" in held.reason
    writes = kit.writes("lambda")
    _apply_held(kit, m)
    assert writes.calls == [] and _alias()["FunctionVersion"] == "1"
