"""Alarm kind against moto: single-metric and metric-math alarms, topic references, autoscaling alarms."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from common import aws
from controller.kinds.registry import handler

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:huntaze-alerts-critical"
LAMBDA_ERRORS: dict[str, Any] = {
    "alarmDescription": "Lambda errors > 50 in 5 minutes",
    "alarmActions": [{"topicRef": "huntaze-alerts-critical"}],
    "namespace": "AWS/Lambda",
    "metricName": "Errors",
    "dimensions": {"FunctionName": "huntaze-rate-limiter"},
    "statistic": "Sum",
    "period": 300,
    "evaluationPeriods": 1,
    "threshold": 50,
    "comparisonOperator": "GreaterThanThreshold",
    "treatMissingData": "notBreaching",
}
FAILURE_RATE: dict[str, Any] = {
    "alarmActions": [{"topicRef": "huntaze-alerts-critical"}],
    "metrics": [
        {"id": "rate", "expression": "100 * failed / MAX([failed + ok, 1])", "returnData": True},
        {
            "id": "failed",
            "metricStat": {
                "metric": {"namespace": "Huntaze/OnlyFans", "metricName": "scraping_failure_count"},
                "period": 300,
                "stat": "Sum",
            },
        },
        {
            "id": "ok",
            "metricStat": {
                "metric": {"namespace": "Huntaze/OnlyFans", "metricName": "scraping_success_count"},
                "period": 300,
                "stat": "Sum",
            },
        },
    ],
    "evaluationPeriods": 2,
    "threshold": 50,
    "comparisonOperator": "GreaterThanThreshold",
}


def test_alarm_single_metric_create_then_read_has_no_diff(kit: Any) -> None:
    kit.resolve("Topic", "huntaze-alerts-critical", arn=TOPIC_ARN)
    m = kit.manifest("Alarm", "lambda_errors_critical", LAMBDA_ERRORS)
    live = kit.reconcile(m)
    assert live.owned and live.fields["alarmActions"] == [TOPIC_ARN]
    assert not kit.delta(m).has_drift
    writes = kit.writes("cloudwatch")
    kit.reconcile(m)
    assert writes.calls == []


def test_alarm_metric_math_threshold_changed_behind_controller_is_repaired(kit: Any) -> None:
    kit.resolve("Topic", "huntaze-alerts-critical", arn=TOPIC_ARN)
    m = kit.manifest("Alarm", "scraper_failure_rate_critical", FAILURE_RATE)
    kit.reconcile(m)
    assert not kit.delta(m).has_drift
    current = aws.client("cloudwatch").describe_alarms(AlarmNames=["scraper_failure_rate_critical"])
    alarm = current["MetricAlarms"][0]
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=alarm["AlarmName"],
        Metrics=alarm["Metrics"],
        EvaluationPeriods=2,
        Threshold=90.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    assert {d.top for d in kit.delta(m).drift} == {"threshold", "alarmActions"}
    writes = kit.writes("cloudwatch")
    kit.reconcile(m)
    assert writes.calls == ["PutMetricAlarm"]
    assert not kit.delta(m).has_drift


def test_alarm_references_are_its_topics() -> None:
    spec = handler("Alarm").spec_model.model_validate(
        {**LAMBDA_ERRORS, "okActions": [{"topicRef": "huntaze-alerts-warning"}]}
    )
    from controller.model import Manifest, Metadata, Source

    m = Manifest(kind="Alarm", metadata=Metadata(name="a"), spec=spec, source=Source(file="f", line=1))
    assert [str(r) for r in handler("Alarm").references(m)] == [
        "Topic/huntaze-alerts-critical",
        "Topic/huntaze-alerts-warning",
    ]


def test_alarm_list_owned_never_reports_target_tracking_alarms(kit: Any) -> None:
    kit.resolve("Topic", "huntaze-alerts-critical", arn=TOPIC_ARN)
    kit.reconcile(kit.manifest("Alarm", "lambda_errors_critical", LAMBDA_ERRORS))
    cw = aws.client("cloudwatch")
    # An alarm that looks like autoscaling's, even carrying our stack tag, is never ours to prune.
    cw.put_metric_alarm(
        AlarmName="TargetTracking-service/huntaze/scraper-AlarmHigh-1234",
        AlarmDescription="DO NOT EDIT OR DELETE. For TargetTrackingScaling policy arn:...",
        MetricName="CPUUtilization",
        Namespace="AWS/ECS",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=3,
        Threshold=70.0,
        ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": "huntaze.io/stack", "Value": kit.ctx.stack}],
    )
    cw.put_metric_alarm(
        AlarmName="not-ours",
        MetricName="Errors",
        Namespace="AWS/Lambda",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    owned = handler("Alarm").list_owned(kit.ctx)
    assert [o.outputs["name"] for o in owned] == ["lambda_errors_critical"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metrics": FAILURE_RATE["metrics"]}, "either metricName"),
        ({"evaluationPeriods": 0}, "evaluationPeriods"),
        ({"datapointsToAlarm": 3}, "datapointsToAlarm"),
        (
            {"alarmActions": [{"topicRef": "t", "arn": "arn:aws:sns:us-east-1:123456789012:x"}]},
            "exactly one of topicRef or arn",
        ),
    ],
)
def test_alarm_spec_invalid_combination_is_rejected(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        handler("Alarm").spec_model.model_validate({**LAMBDA_ERRORS, **change})
