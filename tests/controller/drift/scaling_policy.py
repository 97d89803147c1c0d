"""Drift of a ScalingPolicy, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs", ResourceId=live.fields["resourceId"],
        ScalableDimension="ecs:service:DesiredCount", MinCapacity=live.fields["minCapacity"], MaxCapacity=7,
    )
    return "maxCapacity"
