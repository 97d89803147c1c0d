"""Function releases through CodeDeploy (``deployment.deploymentGroupRef``), against moto over HTTP: a release is a
CodeDeploy deployment of the group with the alias' AppSpec, which the local plane's engine runs to the end; a
deployment stopped on its group's alarm holds the release, as the alias record's rollback does. The manifests' gate
names its group, with the group's configuration as its strategy, and is applied after it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from common import aws
from controller import traffic_shift
from controller.diff import Verdict
from controller.reconciler import Action, ApplyOptions, Reconciler
from localplane.codedeploy_engine import CodeDeployEngine

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
ALARM = "gate-canary-errors"


@pytest.fixture
def group(kit: Any) -> str:
    """The function's role, and a CodeDeploy application and deployment group watching ``ALARM``."""
    arn: str = aws.client("iam").create_role(RoleName="gate", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    kit.resolve("Role", "huntaze-gate", arn=arn)
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=ALARM, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "FunctionName", "Value": "huntaze-rate-limiter"}])
    kit.reconcile(kit.manifest("CodeDeployApplication", "huntaze-rate-limiter", {"computePlatform": "Lambda"}))
    kit.resolve("CodeDeployApplication", "huntaze-rate-limiter", name="huntaze-rate-limiter")
    live = kit.reconcile(kit.manifest("CodeDeployDeploymentGroup", "huntaze-rate-limiter-live", {
        "applicationRef": "huntaze-rate-limiter", "serviceRoleArn": arn,
        "alarmConfiguration": {"alarms": [ALARM]},
        "autoRollbackConfiguration": {"events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]}}))
    kit.resolve("CodeDeployDeploymentGroup", "huntaze-rate-limiter-live", **live.outputs)
    return "huntaze-rate-limiter-live"


def _spec(package: Path, group: str) -> dict[str, Any]:
    return {"functionName": "huntaze-rate-limiter", "code": {"packages": [str(package)]},
            "handler": "tinygate.handler.handler", "roleRef": "huntaze-gate",
            "deployment": {"strategy": "Canary10Percent5Minutes", "deploymentGroupRef": group}}


def _alias() -> dict[str, Any]:
    return dict(aws.client("lambda").get_alias(FunctionName="huntaze-rate-limiter", Name="live"))


def _deployment(deployment_id: str) -> dict[str, Any]:
    found: dict[str, Any] = aws.client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    return found


def _release_v2(kit: Any, package: Path, group: str) -> tuple[Any, str]:
    m = kit.manifest("Function", "huntaze-rate-limiter", _spec(package, group))
    kit.reconcile(m)
    (package / "handler.py").write_text("def handler(event, context):\n    return {'batchItemFailures': [2]}\n")
    kit.reconcile(m)
    record = traffic_shift.decode(_alias()["Description"])
    assert record is not None and record.deployment, _alias()
    return m, record.deployment


def test_function_release_with_a_deployment_group_is_a_codedeploy_deployment_run_to_success(
    kit: Any, package: Path, group: str
) -> None:
    m, deployment = _release_v2(kit, package, group)
    info = _deployment(deployment)
    assert info["status"] == "Created"
    assert (info["applicationName"], info["deploymentGroupName"]) == ("huntaze-rate-limiter", group)
    assert info["deploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
    appspec = json.loads(info["revision"]["appSpecContent"]["content"])
    [resource] = [r for entry in appspec["Resources"] for r in entry.values()]
    assert resource == {"Type": "AWS::Lambda::Function", "Properties": {
        "Name": "huntaze-rate-limiter", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}}
    assert traffic_shift.weights(_alias()) == {"1": 1.0}  # CodeDeploy moves it, not the kind
    writes = kit.writes("lambda", "codedeploy")
    kit.reconcile(m)  # the deployment under way serves the spec: no new version, no second deployment
    assert writes.calls == []

    engine = CodeDeployEngine(scale=lambda: 6.0)
    engine.tick()
    assert traffic_shift.weights(_alias()) == {"1": 0.9, "2": 0.1}
    engine.tick(now=_deployment(deployment)["startTime"] + timedelta(seconds=51))
    assert traffic_shift.weights(_alias()) == {"2": 1.0}
    assert _deployment(deployment)["status"] == "Succeeded"
    record = traffic_shift.resolve(traffic_shift.decode(_alias()["Description"]), aws.client("codedeploy"))
    assert record is not None and record.state == traffic_shift.COMPLETED
    assert not kit.delta(m).has_drift


def test_function_release_stopped_on_the_groups_alarm_is_rolled_back_and_held(
    kit: Any, package: Path, group: str
) -> None:
    m, deployment = _release_v2(kit, package, group)
    engine = CodeDeployEngine(scale=lambda: 6.0)
    engine.tick()
    aws.client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="canary errors")
    engine.tick()
    assert traffic_shift.weights(_alias()) == {"1": 1.0}
    assert _deployment(deployment)["status"] == "Stopped"
    delta = kit.delta(m)
    [held] = delta.held
    assert held.path == "release" and held.verdict is Verdict.HELD
    assert held.reason.startswith(f"held: rolled back from version 2 (CodeDeploy deployment {deployment} Stopped; "
                                  f"alarm {ALARM} in ALARM"), held.reason
    writes = kit.writes("lambda", "codedeploy")
    [result] = Reconciler(kit.ctx).apply(kit.stack_of(m), ApplyOptions())
    assert result.action is Action.UNCHANGED and writes.calls == []


def test_function_spec_with_a_deployment_group_refuses_its_own_alarm_list(package: Path) -> None:
    from pydantic import ValidationError

    from controller.kinds.registry import handler

    spec = _spec(package, "g")
    spec["deployment"]["alarms"] = ["x"]
    with pytest.raises(ValidationError, match="alarmConfiguration; list the alarms there"):
        handler("Function").spec_model.model_validate(spec)


def test_function_release_during_a_deployment_stops_it_and_deploys_from_the_primary_version(
    kit: Any, package: Path, group: str
) -> None:
    m, first = _release_v2(kit, package, group)
    CodeDeployEngine(scale=lambda: 6.0).tick()
    assert traffic_shift.weights(_alias()) == {"1": 0.9, "2": 0.1}
    (package / "handler.py").write_text("def handler(event, context):\n    return {'batchItemFailures': [3]}\n")
    kit.reconcile(m)
    assert _deployment(first)["status"] == "Stopped"
    record = traffic_shift.decode(_alias()["Description"])
    assert record is not None and record.deployment != first and (record.old, record.new) == ("1", "3")
    assert traffic_shift.weights(_alias()) == {"1": 1.0}  # where CodeDeploy starts the new deployment from
    appspec = json.loads(_deployment(record.deployment)["revision"]["appSpecContent"]["content"])
    [resource] = [r for entry in appspec["Resources"] for r in entry.values()]
    assert (resource["Properties"]["CurrentVersion"], resource["Properties"]["TargetVersion"]) == ("1", "3")


def test_manifests_gate_releases_through_its_deployment_group_applied_before_it() -> None:
    """manifests/gate.yaml: the gate's Function names the stack's deployment group, with the group's own
    configuration as its strategy, and the apply order puts the group, its application and service role in
    earlier tiers than the Function (CreateDeployment needs them)."""
    from controller.specs import LoadOptions, load

    repo = Path(__file__).resolve().parents[2]
    variables = {"ENV": "local", "AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID": "123456789012",
                 "REDIS_URL": "redis://127.0.0.1:9/0", "SITE_URL": "http://127.0.0.1:9/site"}
    stack = load(LoadOptions([str(repo / "manifests"), str(repo / "ecs-specs")], "local", variables))
    tier_of = {m.key: i for i, tier in enumerate(stack.tiers) for m in tier}
    by_key = {m.key: m for m in stack.manifests}
    (gate,) = [m for m in stack.manifests if m.kind == "Function" and m.metadata.name == "huntaze-rate-limiter"]
    deployment: Any = gate.spec.deployment
    group = by_key[next(k for k in by_key if k.kind == "CodeDeployDeploymentGroup"
                        and k.name == deployment.deployment_group_ref)]
    group_spec: Any = group.spec
    assert group_spec.deployment_config_name == "CodeDeployDefault.Lambda" + deployment.strategy
    assert deployment.strategy == "Canary10Percent5Minutes"
    before = [group.key, *(k for k in by_key if (k.kind, k.name) in {
        ("CodeDeployApplication", group_spec.application_ref), ("Role", group_spec.service_role_ref)})]
    assert len(before) == 3
    assert all(tier_of[k] < tier_of[gate.key] for k in before), {str(k): tier_of[k] for k in [*before, gate.key]}
