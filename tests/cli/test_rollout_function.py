"""`huntazectl rollout status|history|undo function NAME` through main(), on releases the Function kind made
(the real reconciler against moto): versions, the live alias' weights, the shift record, undo."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from common.aws import client
from controller.cli import main
from controller.kinds.base import Context
from controller.kinds.registry import handler
from controller.model import Manifest, Metadata, ResourceKey, Source
from controller.reconciler import ApplyOptions, Reconciler
from controller.specs import LoadedStack

NAME = "huntaze-rate-limiter"
TRUST = {"Version": "2012-10-17", "Statement": []}


def apply(ctx: Context, package: Path, **extra: Any) -> None:
    spec = {"functionName": NAME, "code": {"packages": [str(package)]}, "handler": "tinygate.handler.handler",
            "roleRef": "gate", **extra}
    manifest = Manifest(kind="Function", metadata=Metadata(name=NAME),
                        spec=handler("Function").spec_model.model_validate(spec), source=Source(file="t.yaml", line=1))
    stack = LoadedStack(manifests=[manifest], tiers=[[manifest]], dependencies={}, documents={}, env="local",
                        variables={})
    [result] = Reconciler(ctx).apply(stack, ApplyOptions(concurrency=1))
    assert not result.failed, result.message


@pytest.fixture
def ctx(aws: str) -> Context:
    role = client("iam").create_role(RoleName="gate", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    made = Context(stack="huntaze-test", region="us-east-1", account_id="123456789012", client=client)
    made.resolved[ResourceKey(kind="Role", name="gate")] = {"arn": role}
    return made


def rollout(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["rollout", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


CANARY = {"strategy": "Canary10Percent5Minutes", "alarms": ["huntaze-gate-errors"]}


def test_rollout_status_and_history_show_a_canary_in_progress(
    ctx: Context, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apply(ctx, package, deployment=CANARY)
    apply(ctx, package, deployment=CANARY, timeout=45)
    code, out = rollout(capsys, "status", "function", NAME)
    assert code == 0, out
    assert "version 1 90%, version 2 10%" in out, out
    assert "1 -> 2 by Canary10Percent5Minutes: SHIFTING" in out, out
    assert "10% at +0 min, 100% at +5 min" in out and "huntaze-gate-errors MISSING (listed)" in out, out
    code, out = rollout(capsys, "status", "function", NAME, "-o", "json")
    status = json.loads(out)
    assert status["weights"] == {"1": 0.9, "2": 0.1} and status["shift"]["state"] == "SHIFTING", status
    code, out = rollout(capsys, "history", "function", NAME, "-o", "json")
    history = json.loads(out)
    assert [(v["version"], v["weight"]) for v in history["versions"]] == [("2", 0.1), ("1", 0.9)], history
    code, out = rollout(capsys, "history", "function", NAME)
    assert code == 0 and re.search(r"Canary10Percent5Minutes from 1: SHIFTING", out), out


def test_rollout_undo_during_a_shift_sends_everything_back_to_the_old_version(
    ctx: Context, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apply(ctx, package, deployment=CANARY)
    apply(ctx, package, deployment=CANARY, timeout=45)
    code, out = rollout(capsys, "undo", "function", NAME)
    assert code == 0 and "alias live -> version 1 (the shift in progress is rolled back" in out, out
    alias = client("lambda").get_alias(FunctionName=NAME, Name="live")
    assert alias["FunctionVersion"] == "1" and not alias["RoutingConfig"]["AdditionalVersionWeights"]
    code, out = rollout(capsys, "status", "function", NAME)
    assert "ROLLED_BACK (rollout undo: version 1 again)" in out and "version 1 100%" in out, out


def test_rollout_undo_after_a_release_points_live_at_the_previous_version(
    ctx: Context, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apply(ctx, package)
    code, out = rollout(capsys, "undo", "function", NAME)
    assert code == 2 and "no earlier version to go back to" in out, out
    apply(ctx, package, timeout=45)
    apply(ctx, package, timeout=50)
    assert client("lambda").get_alias(FunctionName=NAME, Name="live")["FunctionVersion"] == "3"
    code, out = rollout(capsys, "undo", "function", NAME)
    assert code == 0 and "version 2 (the version the last release replaced" in out, out
    assert client("lambda").get_alias(FunctionName=NAME, Name="live")["FunctionVersion"] == "2"
    code, out = rollout(capsys, "undo", "function", NAME)  # the record now names 2 as undone: the one below it
    assert code == 0 and "version 1 (the highest version below it" in out, out


def test_rollout_status_shows_the_functions_own_alarms_as_watched(
    ctx: Context, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apply(ctx, package, deployment=CANARY)
    client("cloudwatch").put_metric_alarm(
        AlarmName="lambda_throttles_high", Namespace="AWS/Lambda", MetricName="Throttles", Statistic="Sum",
        Dimensions=[{"Name": "FunctionName", "Value": NAME}], Period=300, EvaluationPeriods=1, Threshold=10,
        ComparisonOperator="GreaterThanThreshold")
    code, out = rollout(capsys, "status", "function", NAME)
    assert code == 0 and "lambda_throttles_high OK (own), huntaze-gate-errors MISSING (listed)" in out, out
    code, out = rollout(capsys, "status", "function", NAME, "-o", "json")
    assert json.loads(out)["alarms"] == {"lambda_throttles_high": {"state": "OK", "why": "own"},
                                         "huntaze-gate-errors": {"state": "MISSING", "why": "listed"}}, out


def test_rollout_status_reads_the_first_releases_record(
    ctx: Context, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apply(ctx, package)  # the first version: a record with no old version
    code, out = rollout(capsys, "status", "function", NAME)
    assert code == 0 and "- -> 1 by AllAtOnce: COMPLETED (first version: nothing to shift from)" in out, out


def test_rollout_status_reads_a_codedeploy_release_from_its_deployment(
    ctx: Context, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from localplane.codedeploy_engine import CodeDeployEngine

    codedeploy = client("codedeploy")
    codedeploy.create_application(applicationName="gate-app", computePlatform="Lambda")
    codedeploy.create_deployment_group(
        applicationName="gate-app", deploymentGroupName="gate-live", serviceRoleArn=ctx.output(
            ResourceKey(kind="Role", name="gate")),
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        alarmConfiguration={"enabled": True, "alarms": [{"name": "gate-canary-errors"}]},
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]})
    client("cloudwatch").put_metric_alarm(
        AlarmName="gate-canary-errors", Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold")
    ctx.resolved[ResourceKey(kind="CodeDeployDeploymentGroup", name="gate-live")] = {
        "name": "gate-live", "applicationName": "gate-app"}
    by_codedeploy = {"strategy": "Canary10Percent5Minutes", "deploymentGroupRef": "gate-live"}
    apply(ctx, package, deployment=by_codedeploy)
    apply(ctx, package, deployment=by_codedeploy, timeout=45)
    engine = CodeDeployEngine(scale=lambda: 6.0)
    engine.tick()
    code, out = rollout(capsys, "status", "function", NAME)
    assert code == 0, out
    assert "version 1 90%, version 2 10%" in out and "1 -> 2 by Canary10Percent5Minutes: SHIFTING" in out, out
    assert re.search(r"deployment +\S+ \(CodeDeploy shifts the alias", out), out
    client("cloudwatch").set_alarm_state(AlarmName="gate-canary-errors", StateValue="ALARM", StateReason="errors")
    engine.tick()
    code, out = rollout(capsys, "status", "function", NAME)
    assert code == 0, out
    assert "version 1 100%" in out, out
    assert re.search(r"1 -> 2 by Canary10Percent5Minutes: ROLLED_BACK \(CodeDeploy deployment \S+ Stopped; "
                     r"alarm gate-canary-errors in ALARM; alias live returned to version 1\)", out), out
