"""Drift mutations for the kinds built by the second kinds engineer (Function, EventSourceMapping, Cluster,
TaskDefinition, Service, ScalingPolicy, Alarm, Dashboard).

Same shape as `mutations.py`: ``fn(manifest, live) -> str`` changes one field with boto3 (via
`common.aws.client`, i.e. behind the controller's back) and returns the diff path that must show as drift.
The drift test in test_reconcile.py takes the first resource of that kind from the full stack (manifests/ +
ecs-specs/). To cover a new kind, add a function and an entry in MUTATIONS.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest

Mutation = Callable[[Manifest, LiveResource], str]


def alarm(manifest: Manifest, live: LiveResource) -> str:
    client("cloudwatch").disable_alarm_actions(AlarmNames=[live.fields["alarmName"]])
    return "actionsEnabled"


def cluster(manifest: Manifest, live: LiveResource) -> str:
    client("ecs").tag_resource(resourceArn=live.physical_id, tags=[{"key": "edited-by", "value": "hand"}])
    return "tags.edited-by"


def dashboard(manifest: Manifest, live: LiveResource) -> str:
    cloudwatch = client("cloudwatch")
    name = live.fields["dashboardName"]
    body = json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"])
    body["widgets"] = body["widgets"][1:]  # the first widget: the last is the controller's ownership footer
    cloudwatch.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))
    return "body.widgets"


def event_source_mapping(manifest: Manifest, live: LiveResource) -> str:
    uuid = live.physical_id.rsplit(":", 1)[-1]
    client("lambda").update_event_source_mapping(UUID=uuid, BatchSize=3)
    return "batchSize"


def function(manifest: Manifest, live: LiveResource) -> str:
    client("lambda").update_function_configuration(FunctionName=live.fields["functionName"], Timeout=61)
    return "timeout"


def scaling_policy(manifest: Manifest, live: LiveResource) -> str:
    client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs", ResourceId=live.fields["resourceId"],
        ScalableDimension="ecs:service:DesiredCount", MinCapacity=live.fields["minCapacity"], MaxCapacity=7,
    )
    return "maxCapacity"


def service(manifest: Manifest, live: LiveResource) -> str:
    client("ecs").tag_resource(resourceArn=live.physical_id, tags=[{"key": "edited-by", "value": "hand"}])
    return "tags.edited-by"


def task_definition(manifest: Manifest, live: LiveResource) -> str:
    """Register a new revision by hand (a different cpu): the family's latest revision now differs."""
    ecs = client("ecs")
    current = ecs.describe_task_definition(taskDefinition=live.physical_id)["taskDefinition"]
    keep = ("family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions",
            "requiresCompatibilities", "memory", "runtimePlatform", "volumes")
    ecs.register_task_definition(**{k: current[k] for k in keep if current.get(k) is not None}, cpu="2048")
    return "cpu"


MUTATIONS: dict[str, Mutation] = {
    "Alarm": alarm,
    "Cluster": cluster,
    "Dashboard": dashboard,
    "EventSourceMapping": event_source_mapping,
    "Function": function,
    "ScalingPolicy": scaling_policy,
    "Service": service,
    "TaskDefinition": task_definition,
}
