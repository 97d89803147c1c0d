"""The local plane's traffic shifter moves a Lambda alias along its strategy's schedule, and back on an alarm."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from common.aws import client
from controller import traffic_shift
from localplane.traffic_shifter import TrafficShifter

from .conftest import zip_of

START = datetime(2026, 12, 2, 8, 0, 0, tzinfo=UTC)


def _shifting(role_arn: str, strategy: str, alarms: list[str] | None = None) -> None:
    """Function ``fn`` with versions 1 and 2 and its live alias at the first step of a shift 1 -> 2."""
    lam = client("lambda")
    lam.create_function(FunctionName="fn", Runtime="python3.12", Role=role_arn, Handler="fn.handler",
                        Code={"ZipFile": zip_of("A = 1")}, Publish=True)
    lam.update_function_code(FunctionName="fn", ZipFile=zip_of("A = 2"))
    lam.publish_version(FunctionName="fn")
    record = traffic_shift.ShiftRecord(new="2", old="1", strategy=strategy,
                                       started=START.strftime("%Y-%m-%dT%H:%M:%SZ"), alarms=alarms or [])
    first = traffic_shift.parse(strategy).steps()[0][1]
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": first}}, Description=record.encode())


def _alias() -> tuple[dict[str, float], dict[str, Any]]:
    alias = client("lambda").get_alias(FunctionName="fn", Name="live")
    return traffic_shift.weights(alias), json.loads(alias["Description"])


def test_linear_shift_follows_the_time_scaled_schedule_to_completion(aws: str, role_arn: str) -> None:
    _shifting(role_arn, "Linear10PercentEvery1Minute")
    shifter = TrafficShifter(scale=lambda: 6.0)  # a minute lasts 10 s
    shifter.tick(now=START + timedelta(seconds=5))
    assert _alias()[0] == {"1": 0.9, "2": 0.1}
    shifter.tick(now=START + timedelta(seconds=31))
    assert _alias()[0] == {"1": 0.6, "2": 0.4}
    shifter.tick(now=START + timedelta(seconds=91))
    weights, record = _alias()
    assert weights == {"2": 1.0} and record["state"] == "COMPLETED", record
    shifter.tick(now=START + timedelta(seconds=200))  # finished: nothing more moves
    assert _alias()[0] == {"2": 1.0}


def test_canary_with_a_watched_alarm_in_alarm_rolls_back_to_the_old_version(aws: str, role_arn: str) -> None:
    _shifting(role_arn, "Canary10Percent5Minutes", alarms=["fn-errors"])
    cloudwatch = client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName="fn-errors", Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
                                Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    shifter = TrafficShifter()
    shifter.tick(now=START + timedelta(minutes=1))
    assert _alias()[0] == {"1": 0.9, "2": 0.1}  # OK: the canary bakes
    cloudwatch.set_alarm_state(AlarmName="fn-errors", StateValue="ALARM", StateReason="errors")
    shifter.tick(now=START + timedelta(minutes=2))
    weights, record = _alias()
    assert weights == {"1": 1.0}
    assert record["state"] == "ROLLED_BACK" and record["reason"] == "alarm fn-errors in ALARM", record
    shifter.tick(now=START + timedelta(minutes=6))  # a rolled back shift never resumes
    assert _alias()[0] == {"1": 1.0}


def test_an_alias_moved_by_hand_during_a_shift_is_left_alone(aws: str, role_arn: str) -> None:
    _shifting(role_arn, "Canary10Percent5Minutes")
    lam = client("lambda")
    description = lam.get_alias(FunctionName="fn", Name="live")["Description"]
    lam.update_alias(FunctionName="fn", Name="live", FunctionVersion="2",
                     RoutingConfig={"AdditionalVersionWeights": {}}, Description=description)
    TrafficShifter().tick(now=START + timedelta(minutes=10))
    weights, record = _alias()
    assert weights == {"2": 1.0} and record["state"] == "SHIFTING"


def test_the_functions_own_alarm_rolls_a_canary_back_without_being_listed(aws: str, role_arn: str) -> None:
    _shifting(role_arn, "Canary10Percent5Minutes")  # deployment.alarms empty
    cloudwatch = client("cloudwatch")
    for name, function in (("fn-throttles", "fn"), ("other-errors", "other")):
        cloudwatch.put_metric_alarm(AlarmName=name, Namespace="AWS/Lambda", MetricName="Throttles",
                                    Dimensions=[{"Name": "FunctionName", "Value": function}], Statistic="Sum",
                                    Period=60, EvaluationPeriods=1, Threshold=1,
                                    ComparisonOperator="GreaterThanThreshold")
    cloudwatch.set_alarm_state(AlarmName="other-errors", StateValue="ALARM", StateReason="another function's")
    shifter = TrafficShifter()
    shifter.tick(now=START + timedelta(minutes=1))
    assert _alias()[0] == {"1": 0.9, "2": 0.1}  # another function's alarm is not watched
    cloudwatch.set_alarm_state(AlarmName="fn-throttles", StateValue="ALARM", StateReason="throttled")
    shifter.tick(now=START + timedelta(minutes=2))
    weights, record = _alias()
    assert weights == {"1": 1.0}
    assert record["state"] == "ROLLED_BACK" and record["reason"] == "alarm fn-throttles in ALARM", record
