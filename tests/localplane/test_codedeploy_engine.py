"""The local plane's CodeDeploy engine runs Lambda deployments of moto's CodeDeploy over HTTP: a canary reaches
Succeeded with the alias all on the new version on the time-scaled schedule; a watched alarm stops one and returns
the alias to the old version; a deployment whose alias is not on its CurrentVersion fails."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.aws import client
from controller import traffic_shift
from localplane.codedeploy_engine import DEPLOY_TIME_SCALE_ENV, CodeDeployEngine, deploy_time_scale

from .conftest import zip_of

ALARM = "fn-errors"


def _deployment(role_arn: str, config: str, *, alias_on: str = "1") -> str:
    """Function ``fn`` with versions 1 and 2 behind ``live``, and a CodeDeploy deployment 1 -> 2 of it."""
    lam = client("lambda")
    lam.create_function(FunctionName="fn", Runtime="python3.12", Role=role_arn, Handler="fn.handler",
                        Code={"ZipFile": zip_of("A = 1")}, Publish=True)
    lam.update_function_code(FunctionName="fn", ZipFile=zip_of("A = 2"))
    lam.publish_version(FunctionName="fn")
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion=alias_on)
    client("cloudwatch").put_metric_alarm(
        AlarmName=ALARM, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    codedeploy = client("codedeploy")
    codedeploy.create_application(applicationName="fn-app", computePlatform="Lambda")
    codedeploy.create_deployment_group(
        applicationName="fn-app", deploymentGroupName="live", serviceRoleArn=role_arn,
        deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        alarmConfiguration={"enabled": True, "alarms": [{"name": ALARM}]},
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]})
    appspec = {"version": 0.0, "Resources": [{"fn": {"Type": "AWS::Lambda::Function", "Properties": {
        "Name": "fn", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}}}]}
    found: str = codedeploy.create_deployment(
        applicationName="fn-app", deploymentGroupName="live", deploymentConfigName=config,
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(appspec)}},
    )["deploymentId"]
    return found


def _info(deployment_id: str) -> dict[str, Any]:
    found: dict[str, Any] = client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    return found


def _weights() -> dict[str, float]:
    return traffic_shift.weights(client("lambda").get_alias(FunctionName="fn", Name="live"))


def test_codedeploy_engine_completes_a_canary_on_the_time_scaled_schedule(aws: str, role_arn: str) -> None:
    deployment = _deployment(role_arn, "CodeDeployDefault.LambdaCanary10Percent5Minutes")
    engine = CodeDeployEngine(scale=lambda: 6.0)  # 5 minutes last 50 s
    engine.tick()
    info = _info(deployment)
    assert info["status"] == "InProgress"
    assert _weights() == {"1": 0.9, "2": 0.1}
    start: datetime = info["startTime"]
    engine.tick(now=start + timedelta(seconds=40))  # still baking
    assert _weights() == {"1": 0.9, "2": 0.1} and _info(deployment)["status"] == "InProgress"
    engine.tick(now=start + timedelta(seconds=51))
    assert _weights() == {"2": 1.0}
    done = _info(deployment)
    assert done["status"] == "Succeeded" and done["errorInformation"] == {} and done["rollbackInfo"] == {}
    engine.tick(now=start + timedelta(minutes=10))  # finished: nothing moves
    assert _weights() == {"2": 1.0}


def test_codedeploy_engine_stops_on_a_watched_alarm_and_rolls_the_alias_back(aws: str, role_arn: str) -> None:
    deployment = _deployment(role_arn, "CodeDeployDefault.LambdaLinear10PercentEvery1Minute")
    engine = CodeDeployEngine(scale=lambda: 6.0)
    engine.tick()
    start: datetime = _info(deployment)["startTime"]
    engine.tick(now=start + timedelta(seconds=21))
    assert _weights() == {"1": 0.7, "2": 0.3}
    client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="errors")
    engine.tick(now=start + timedelta(seconds=25))
    assert _weights() == {"1": 1.0}
    info = _info(deployment)
    assert info["status"] == "Stopped"
    assert info["errorInformation"] == {"code": "ALARM_ACTIVE", "message": f"alarm {ALARM} in ALARM"}
    assert info["rollbackInfo"]["rollbackMessage"] == "alias live returned to version 1"
    engine.tick(now=start + timedelta(minutes=20))  # a stopped deployment never resumes
    assert _weights() == {"1": 1.0}


def test_codedeploy_engine_fails_a_deployment_whose_alias_is_not_on_its_current_version(aws: str,
                                                                                       role_arn: str) -> None:
    deployment = _deployment(role_arn, "CodeDeployDefault.LambdaAllAtOnce", alias_on="2")
    CodeDeployEngine().tick(now=datetime.now(UTC))
    info = _info(deployment)
    assert info["status"] == "Failed" and info["errorInformation"]["code"] == "INVALID_ALIAS_VERSION"
    assert _weights() == {"2": 1.0}


def test_deploy_time_scale_follows_the_plane_unless_set_and_names_the_variable_when_wrong(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(DEPLOY_TIME_SCALE_ENV, raising=False)
    assert deploy_time_scale(6.0) == 6.0
    monkeypatch.setenv(DEPLOY_TIME_SCALE_ENV, "15")
    assert deploy_time_scale(6.0) == 15.0
    for wrong in ("0", "-1", "fast", "inf"):
        monkeypatch.setenv(DEPLOY_TIME_SCALE_ENV, wrong)
        with pytest.raises(ValueError, match=DEPLOY_TIME_SCALE_ENV):
            deploy_time_scale(6.0)
