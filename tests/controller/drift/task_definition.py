"""Drift of a TaskDefinition, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    """Register a new revision by hand (a different cpu): the family's latest revision now differs."""
    ecs = client("ecs")
    current = ecs.describe_task_definition(taskDefinition=live.physical_id)["taskDefinition"]
    keep = ("family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions",
            "requiresCompatibilities", "memory", "runtimePlatform", "volumes")
    ecs.register_task_definition(**{k: current[k] for k in keep if current.get(k) is not None}, cpu="2048")
    return "cpu"
