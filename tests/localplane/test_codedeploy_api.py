"""The local emulator's CodeDeploy (`localplane.codedeploy_api`), over HTTP: the calls moto 5.2 lacks behave as
AWS's, and the local plane moves a Lambda deployment through CodeDeploy's life cycle with the local-only action."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from common import aws
from common.aws import clear_client_cache, client
from localplane.codedeploy_api import LocalApiError, update_deployment_status

ROLE = "arn:aws:iam::123456789012:role/huntaze-codedeploy-role"
APPSPEC = ('{"version": 0.0, "Resources": [{"gate": {"Type": "AWS::Lambda::Function", "Properties": {'
           '"Name": "huntaze-rate-limiter", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}}}]}')


def _deployment() -> str:
    codedeploy = client("codedeploy")
    codedeploy.create_application(applicationName="gate", computePlatform="Lambda",
                                  tags=[{"Key": "team", "Value": "platform"}])
    codedeploy.create_deployment_group(
        applicationName="gate", deploymentGroupName="live", serviceRoleArn=ROLE,
        deploymentConfigName="CodeDeployDefault.LambdaCanary10Percent5Minutes",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        alarmConfiguration={"enabled": True, "alarms": [{"name": "lambda_errors_critical"}]},
        tags=[{"Key": "team", "Value": "platform"}])
    found: str = codedeploy.create_deployment(
        applicationName="gate", deploymentGroupName="live",
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": APPSPEC}})["deploymentId"]
    return found


def _info(deployment_id: str) -> dict[str, Any]:
    found: dict[str, Any] = client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    return found


def test_codedeploy_deployment_moves_created_in_progress_succeeded_and_then_stays(aws: str) -> None:
    deployment = _deployment()
    assert _info(deployment)["status"] == "Created"
    update_deployment_status(deployment, "InProgress")
    started = _info(deployment)
    assert started["status"] == "InProgress" and "startTime" in started and "completeTime" not in started
    update_deployment_status(deployment, "Succeeded", message="all traffic on version 2")
    done = _info(deployment)
    assert done["status"] == "Succeeded" and done["completeTime"] >= done["startTime"]
    assert done["deploymentStatusMessages"] == ["all traffic on version 2"]
    group = client("codedeploy").get_deployment_group(applicationName="gate",
                                                      deploymentGroupName="live")["deploymentGroupInfo"]
    assert group["lastSuccessfulDeployment"]["deploymentId"] == deployment
    assert group["lastAttemptedDeployment"]["status"] == "Succeeded"
    with pytest.raises(LocalApiError, match="is Succeeded: it can move to nothing"):
        update_deployment_status(deployment, "Failed")
    listed = client("codedeploy").list_deployments(applicationName="gate", deploymentGroupName="live",
                                                   includeOnlyStatuses=["Succeeded"])["deployments"]
    assert listed == [deployment]


def test_codedeploy_deployment_stopped_on_alarm_keeps_error_and_rollback_info(aws: str) -> None:
    deployment = _deployment()
    update_deployment_status(deployment, "InProgress")
    update_deployment_status(deployment, "Stopped", error={"code": "ALARM_ACTIVE", "message": "lambda_errors_critical"},
                             rollback={"rollbackMessage": "alias live back on version 1"})
    info = _info(deployment)
    assert info["status"] == "Stopped"
    assert info["errorInformation"] == {"code": "ALARM_ACTIVE", "message": "lambda_errors_critical"}
    assert info["rollbackInfo"] == {"rollbackMessage": "alias live back on version 1"}


def test_codedeploy_stop_deployment_stops_once_then_answers_already_completed(aws: str) -> None:
    deployment = _deployment()
    codedeploy = client("codedeploy")
    answer = codedeploy.stop_deployment(deploymentId=deployment, autoRollbackEnabled=True)
    assert answer["status"] == "Succeeded"
    assert _info(deployment)["status"] == "Stopped"
    assert _info(deployment)["errorInformation"]["code"] == "DEPLOYMENT_STOPPED"
    with pytest.raises(ClientError) as raised:
        codedeploy.stop_deployment(deploymentId=deployment)
    assert raised.value.response["Error"]["Code"] == "DeploymentAlreadyCompletedException"


def test_codedeploy_update_and_delete_calls_moto_lacks(aws: str) -> None:
    _deployment()
    codedeploy = client("codedeploy")
    codedeploy.update_application(applicationName="gate", newApplicationName="gate2")
    assert codedeploy.list_applications()["applications"] == ["gate2"]
    assert codedeploy.list_deployment_groups(applicationName="gate2")["deploymentGroups"] == ["live"]
    arn = "arn:aws:codedeploy:us-east-1:123456789012:application:gate2"
    assert codedeploy.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "platform"}]
    codedeploy.update_deployment_group(applicationName="gate2", currentDeploymentGroupName="live",
                                       alarmConfiguration={"enabled": False, "alarms": []},
                                       deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce")
    group = codedeploy.get_deployment_group(applicationName="gate2", deploymentGroupName="live")["deploymentGroupInfo"]
    assert group["deploymentConfigName"] == "CodeDeployDefault.LambdaAllAtOnce"
    assert group["alarmConfiguration"] == {"enabled": False, "ignorePollAlarmFailure": False, "alarms": []}
    assert group["serviceRoleArn"] == ROLE  # fields not sent are kept
    codedeploy.delete_deployment_group(applicationName="gate2", deploymentGroupName="live")
    codedeploy.delete_deployment_group(applicationName="gate2", deploymentGroupName="live")  # gone: success
    assert codedeploy.list_deployment_groups(applicationName="gate2")["deploymentGroups"] == []
    codedeploy.delete_application(applicationName="gate2")
    codedeploy.delete_application(applicationName="gate2")
    assert codedeploy.list_applications()["applications"] == []


def test_codedeploy_local_status_action_is_refused_for_a_real_aws_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://codedeploy.us-east-1.amazonaws.com")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    clear_client_cache()
    try:
        with pytest.raises(LocalApiError, match="on AWS, CodeDeploy moves its deployments itself"):
            update_deployment_status("d-123", "Succeeded")
    finally:
        clear_client_cache()
    assert aws.is_local_endpoint("http://127.0.0.1:5000")
