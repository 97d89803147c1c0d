"""CodeDeployDeploymentGroup kind against moto over HTTP (the local emulator, whose CodeDeploy gaps are filled by
`localplane.codedeploy_api`), through the real reconciler: create with alarms, rollback and style; a no-op that
writes nothing; a spec change sent as one UpdateDeploymentGroup; changes made by hand shown as drift with their
values and repaired; ownership and delete."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from common import aws
from controller.kinds.registry import handler
from controller.reconciler import Action, ApplyOptions, Reconciler

ROLE = "arn:aws:iam::123456789012:role/huntaze-codedeploy-role"
GROUP: dict[str, Any] = {
    "applicationRef": "huntaze-gate",
    "serviceRoleArn": ROLE,
    "deploymentConfigName": "CodeDeployDefault.LambdaCanary10Percent5Minutes",
    "alarmConfiguration": {"alarms": ["lambda_throttles_high", "lambda_errors_critical"]},
    "autoRollbackConfiguration": {"events": ["DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_FAILURE"]},
    "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
}


def _with_application(kit: Any) -> None:
    kit.reconcile(kit.manifest("CodeDeployApplication", "huntaze-gate", {"computePlatform": "Lambda"}))
    kit.resolve("CodeDeployApplication", "huntaze-gate", name="huntaze-gate")


def _group() -> dict[str, Any]:
    found: dict[str, Any] = aws.client("codedeploy").get_deployment_group(
        applicationName="huntaze-gate", deploymentGroupName="live")["deploymentGroupInfo"]
    return found


def test_code_deploy_deployment_group_created_then_second_apply_writes_nothing(kit: Any) -> None:
    _with_application(kit)
    m = kit.manifest("CodeDeployDeploymentGroup", "live", GROUP)
    live = kit.reconcile(m)
    group = _group()
    assert group["deploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
    assert group["serviceRoleArn"] == ROLE
    assert group["alarmConfiguration"] == {"enabled": True, "ignorePollAlarmFailure": False, "alarms": [
        {"name": "lambda_errors_critical"}, {"name": "lambda_throttles_high"}]}
    assert group["autoRollbackConfiguration"]["events"] == ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
    assert group["deploymentStyle"] == {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
    assert live.owned and live.outputs["applicationName"] == "huntaze-gate"

    writes = kit.writes("codedeploy", "resourcegroupstaggingapi")
    [again] = Reconciler(kit.ctx).apply(kit.stack_of(m), ApplyOptions())
    assert again.action is Action.UNCHANGED, [d.path for d in again.delta.drift] if again.delta else again.message
    assert writes.calls == []


def test_code_deploy_deployment_group_spec_change_is_one_update_of_the_changed_fields(kit: Any) -> None:
    _with_application(kit)
    kit.reconcile(kit.manifest("CodeDeployDeploymentGroup", "live", GROUP))
    changed = kit.manifest("CodeDeployDeploymentGroup", "live", {
        **GROUP, "deploymentConfigName": "CodeDeployDefault.LambdaLinear10PercentEvery1Minute",
        "alarmConfiguration": {"alarms": ["lambda_errors_critical", "gate_invalid_rate_high"]}})
    assert {d.top for d in kit.delta(changed).drift} == {"deploymentConfigName", "alarmConfiguration"}
    writes = kit.writes("codedeploy")
    kit.reconcile(changed)
    assert writes.calls == ["UpdateDeploymentGroup"]
    group = _group()
    assert group["deploymentConfigName"] == "CodeDeployDefault.LambdaLinear10PercentEvery1Minute"
    assert [a["name"] for a in group["alarmConfiguration"]["alarms"]] == ["gate_invalid_rate_high",
                                                                           "lambda_errors_critical"]
    assert not kit.delta(changed).has_drift


def test_code_deploy_deployment_group_changed_by_hand_is_drift_with_values_and_repaired(kit: Any) -> None:
    _with_application(kit)
    m = kit.manifest("CodeDeployDeploymentGroup", "live", GROUP)
    kit.reconcile(m)
    aws.client("codedeploy").update_deployment_group(
        applicationName="huntaze-gate", currentDeploymentGroupName="live",
        deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce",
        alarmConfiguration={"enabled": False, "alarms": []},
        autoRollbackConfiguration={"enabled": False, "events": []})
    drift = {d.path: (d.desired, d.live) for d in kit.delta(m).drift}
    assert drift["deploymentConfigName"] == ("CodeDeployDefault.LambdaCanary10Percent5Minutes",
                                             "CodeDeployDefault.LambdaAllAtOnce")
    assert drift["alarmConfiguration.enabled"] == (True, False)
    assert drift["autoRollbackConfiguration.enabled"] == (True, False)
    assert {p.split(".")[0] for p in drift} == {"deploymentConfigName", "alarmConfiguration",
                                                "autoRollbackConfiguration"}
    writes = kit.writes("codedeploy")
    kit.reconcile(m)
    assert writes.calls == ["UpdateDeploymentGroup"]
    assert not kit.delta(m).has_drift
    assert _group()["alarmConfiguration"]["enabled"] is True


def test_code_deploy_deployment_group_list_owned_and_delete(kit: Any) -> None:
    _with_application(kit)
    kit.reconcile(kit.manifest("CodeDeployDeploymentGroup", "live", GROUP))
    aws.client("codedeploy").create_deployment_group(
        applicationName="huntaze-gate", deploymentGroupName="by-hand", serviceRoleArn=ROLE)
    kind = handler("CodeDeployDeploymentGroup")
    owned = kind.list_owned(kit.ctx)
    assert [str(live.key) for live in owned] == ["CodeDeployDeploymentGroup/live"]
    kind.delete(owned[0], kit.ctx)
    kind.delete(owned[0], kit.ctx)  # already gone: success, as on AWS
    assert kind.list_owned(kit.ctx) == []
    groups = aws.client("codedeploy").list_deployment_groups(applicationName="huntaze-gate")["deploymentGroups"]
    assert groups == ["by-hand"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"deploymentConfigName": "CodeDeployDefault.OneAtATime"}, "must be one of CodeDeployDefault.Lambda"),
        ({"alarmConfiguration": {"alarms": []}}, "enabled needs at least one alarm"),
        ({"alarmConfiguration": {"alarms": [f"a{i}" for i in range(11)]}}, "at most 10 alarms"),
        ({"autoRollbackConfiguration": {"events": []}}, "enabled needs at least one event"),
        ({"autoRollbackConfiguration": {"events": ["DEPLOYMENT_SUCCESS"]}}, "DEPLOYMENT_FAILURE"),
        ({"deploymentStyle": {"deploymentType": "IN_PLACE"}}, "BLUE_GREEN"),
        ({"deploymentStyle": {"deploymentOption": "WITHOUT_TRAFFIC_CONTROL"}}, "WITH_TRAFFIC_CONTROL"),
        ({"serviceRoleRef": "huntaze-codedeploy-role"}, "exactly one of serviceRoleRef or serviceRoleArn"),
        ({"deploymentGroupName": "a/b"}, "may contain only letters"),
    ],
)
def test_code_deploy_deployment_group_spec_breaking_a_codedeploy_rule_is_rejected(change: dict[str, Any],
                                                                                 message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        handler("CodeDeployDeploymentGroup").spec_model.model_validate({**GROUP, **change})
