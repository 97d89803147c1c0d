"""ScalingPolicy kind against moto: scalable target min/max and target tracking on the FIFO queue depth."""

from __future__ import annotations

from typing import Any

from common import aws
from controller.kinds.registry import handler

RESOURCE_ID = "service/huntaze/huntaze-onlyfans-scraper"
POLICY: dict[str, Any] = {
    "serviceRef": "huntaze-onlyfans-scraper",
    "minCapacity": 1,
    "maxCapacity": 10,
    "targetTracking": {
        "targetValue": 100,
        "scaleInCooldown": 300,
        "scaleOutCooldown": 60,
        "customizedMetricSpecification": {
            "namespace": "AWS/SQS",
            "metricName": "ApproximateNumberOfMessagesVisible",
            "statistic": "Average",
            "dimensions": {"QueueName": "huntaze-hybrid-workflows.fifo"},
        },
    },
}


def _service(kit: Any) -> None:
    kit.reconcile(kit.manifest("Cluster", "huntaze", {}))
    kit.reconcile(
        kit.manifest(
            "TaskDefinition",
            "td",
            {
                "family": "huntaze-onlyfans-scraper",
                "cpu": 1024,
                "memory": 2048,
                "containerDefinitions": [{"name": "c", "image": "i"}],
            },
        )
    )
    kit.reconcile(
        kit.manifest(
            "Service",
            "huntaze-onlyfans-scraper",
            {
                "clusterRef": "huntaze",
                "taskDefinitionRef": "td",
                "capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}],
                "networkConfiguration": {"awsvpcConfiguration": {"subnetsFrom": "default-vpc"}},
            },
        )
    )


def test_scaling_policy_create_then_read_has_no_diff(kit: Any) -> None:
    _service(kit)
    m = kit.manifest("ScalingPolicy", "huntaze-scraper-queue-depth", POLICY)
    live = kit.reconcile(m)
    assert live.owned and live.fields["resourceId"] == RESOURCE_ID
    assert not kit.delta(m).has_drift
    writes = kit.writes("application-autoscaling")
    kit.reconcile(m)
    assert writes.calls == []


def test_scaling_policy_max_capacity_changed_behind_controller_is_repaired(kit: Any) -> None:
    _service(kit)
    m = kit.manifest("ScalingPolicy", "huntaze-scraper-queue-depth", POLICY)
    kit.reconcile(m)
    aws.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=RESOURCE_ID,
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=0,
        MaxCapacity=3,
    )
    assert {d.top for d in kit.delta(m).drift} == {"minCapacity", "maxCapacity"}
    writes = kit.writes("application-autoscaling")
    kit.reconcile(m)
    assert writes.calls == ["RegisterScalableTarget"]
    assert not kit.delta(m).has_drift


def test_scaling_policy_target_value_drift_is_repaired(kit: Any) -> None:
    _service(kit)
    m = kit.manifest("ScalingPolicy", "huntaze-scraper-queue-depth", POLICY)
    kit.reconcile(m)
    config = {
        "TargetValue": 5.0,
        "CustomizedMetricSpecification": {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Namespace": "AWS/SQS",
            "Statistic": "Average",
            "Dimensions": [{"Name": "QueueName", "Value": "huntaze-hybrid-workflows.fifo"}],
        },
    }
    aws.client("application-autoscaling").put_scaling_policy(
        PolicyName="huntaze-scraper-queue-depth",
        ServiceNamespace="ecs",
        ResourceId=RESOURCE_ID,
        ScalableDimension="ecs:service:DesiredCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration=config,
    )
    paths = {d.path for d in kit.delta(m).drift}
    assert paths == {"targetTracking.TargetValue", "targetTracking.ScaleOutCooldown"}
    kit.reconcile(m)
    assert not kit.delta(m).has_drift


def test_scaling_policy_target_tracking_alarms_are_not_alarm_strays(kit: Any) -> None:
    _service(kit)
    kit.reconcile(kit.manifest("ScalingPolicy", "huntaze-scraper-queue-depth", POLICY))
    alarms = aws.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert any(a["AlarmName"].startswith("TargetTracking-") for a in alarms)
    assert handler("Alarm").list_owned(kit.ctx) == []


def test_scaling_policy_list_owned_and_delete(kit: Any) -> None:
    _service(kit)
    live = kit.reconcile(kit.manifest("ScalingPolicy", "huntaze-scraper-queue-depth", POLICY))
    owned = handler("ScalingPolicy").list_owned(kit.ctx)
    assert [o.key.name for o in owned] == ["huntaze-scraper-queue-depth"]
    handler("ScalingPolicy").delete(live, kit.ctx)
    targets = aws.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")
    assert targets["ScalableTargets"] == []
