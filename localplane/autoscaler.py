"""Applies Application Auto Scaling target-tracking policies for ECS services locally.

Moto stores scalable targets and policies but never scales. Each tick, `Autoscaler.tick()` evaluates every
target-tracking policy on an ECS service whose metric is an SQS queue attribute (the seed's
ApproximateNumberOfMessagesVisible on the workflows queue), computes ceil(metric / target) clamped to the
scalable target's min and max, honours the scale-out and scale-in cooldowns, and sets the service's
desiredCount, which `ServiceRunner` then follows.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common.aws import client

log = logging.getLogger(__name__)
# CloudWatch's AWS/SQS metric names and the queue attributes they are computed from.
SQS_METRIC_ATTRIBUTES = {
    "ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed": "ApproximateNumberOfMessagesDelayed",
}


@dataclass
class Autoscaler:
    clock: Callable[[], float] = time.monotonic
    last_change: dict[str, float] = field(default_factory=dict)

    def tick(self) -> list[tuple[str, int, int]]:
        """Returns (resource id, old desired, new desired) for each change made."""
        aas = client("application-autoscaling")
        targets = {t["ResourceId"]: t for t in aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]}
        changes = []
        for policy in aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]:
            config = policy.get("TargetTrackingScalingPolicyConfiguration")
            target = targets.get(policy["ResourceId"])
            if not config or not target:
                continue
            change = self._apply(policy["ResourceId"], config, target)
            if change:
                changes.append(change)
        return changes

    def _metric_value(self, config: dict[str, Any]) -> float | None:
        spec = config.get("CustomizedMetricSpecification", {})
        if spec.get("Namespace") != "AWS/SQS":
            return None
        dims = {d["Name"]: d["Value"] for d in spec.get("Dimensions", [])}
        queue = dims.get("QueueName")
        if not queue:
            return None
        attribute = SQS_METRIC_ATTRIBUTES.get(spec["MetricName"])
        if attribute is None:
            return None
        sqs = client("sqs")
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[attribute])["Attributes"]
        return float(attrs.get(attribute, 0))

    def _apply(self, resource_id: str, config: dict[str, Any], target: dict[str, Any]) -> tuple[str, int, int] | None:
        value = self._metric_value(config)
        if value is None:
            return None
        wanted = max(target["MinCapacity"], min(target["MaxCapacity"], math.ceil(value / config["TargetValue"])))
        _, cluster, service = resource_id.split("/", 2)
        ecs = client("ecs")
        described = ecs.describe_services(cluster=cluster, services=[service])["services"]
        if not described:
            return None
        current = int(described[0]["desiredCount"])
        if wanted == current:
            return None
        cooldown = config.get("ScaleOutCooldown", 0) if wanted > current else config.get("ScaleInCooldown", 0)
        now = self.clock()
        if resource_id in self.last_change and now - self.last_change[resource_id] < cooldown:
            return None
        ecs.update_service(cluster=cluster, service=service, desiredCount=wanted)
        self.last_change[resource_id] = now
        log.info("scaled %s from %d to %d (metric %.0f, target %.0f)", resource_id, current, wanted, value,
                 config["TargetValue"])
        return resource_id, current, wanted
