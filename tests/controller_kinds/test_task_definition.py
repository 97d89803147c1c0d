"""TaskDefinition kind against moto: compare before registering, no revision churn, references, drift."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from common import aws
from controller.kinds.registry import handler

ROLE = "arn:aws:iam::123456789012:role/huntaze-scraper-task"
EXEC_ROLE = "arn:aws:iam::123456789012:role/huntaze-scraper-execution"
QUEUE_URL = "http://localhost/123456789012/huntaze-hybrid-workflows.fifo"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:redis/auth-token-AbCdEf"
SPEC: dict[str, Any] = {
    "family": "huntaze-onlyfans-scraper",
    "taskRoleRef": "huntaze-scraper-task",
    "executionRoleRef": "huntaze-scraper-execution",
    "cpu": "1 vCPU",
    "memory": "2 GB",
    "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
    "containerDefinitions": [
        {
            "name": "playwright-scraper",
            # The local scraper build every reset emulator holds (localplane.local_images): resolved by digest.
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/huntaze/onlyfans-scraper:local",
            "environment": [
                {"name": "HUNTAZE_SITE_URL", "value": "https://creators.example"},
                {
                    "name": "HUNTAZE_WORKFLOWS_QUEUE_URL",
                    "valueFrom": {"queueRef": "huntaze-hybrid-workflows.fifo", "output": "url"},
                },
            ],
            "secrets": [{"name": "REDIS_URL", "valueFrom": {"secretRef": "redis/auth-token", "jsonKey": "url"}}],
            "portMappings": [{"containerPort": 8080}],
            "logConfiguration": {
                "logGroupRef": "/huntaze/local/onlyfans-scraper",
                "options": {"awslogs-region": "us-east-1", "awslogs-stream-prefix": "playwright"},
            },
            "healthCheck": {"command": ["CMD-SHELL", "curl -fs http://localhost:8080/health || exit 1"]},
            "stopTimeout": 30,
        }
    ],
}


def _resolve_refs(kit: Any) -> None:
    kit.resolve("Role", "huntaze-scraper-task", arn=ROLE)
    kit.resolve("Role", "huntaze-scraper-execution", arn=EXEC_ROLE)
    kit.resolve("Queue", "huntaze-hybrid-workflows.fifo", url=QUEUE_URL, arn="arn:aws:sqs:x")
    kit.resolve("Secret", "redis/auth-token", arn=SECRET_ARN)
    kit.resolve("LogGroup", "/huntaze/local/onlyfans-scraper", name="/huntaze/local/onlyfans-scraper")


def _revisions(family: str) -> list[str]:
    return aws.client("ecs").list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]


def test_task_definition_create_resolves_references_and_reads_back_without_diff(kit: Any) -> None:
    _resolve_refs(kit)
    m = kit.manifest("TaskDefinition", "huntaze-onlyfans-scraper", SPEC)
    live = kit.reconcile(m)
    container = live.fields["containerDefinitions"][0]
    assert live.fields["cpu"] == "1024" and live.fields["memory"] == "2048"
    assert live.fields["taskRoleArn"] == ROLE
    assert {"name": "HUNTAZE_WORKFLOWS_QUEUE_URL", "value": QUEUE_URL} in container["environment"]
    assert container["secrets"] == [{"name": "REDIS_URL", "valueFrom": f"{SECRET_ARN}:url::"}]
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/huntaze/local/onlyfans-scraper"
    assert not kit.delta(m).has_drift


def test_task_definition_second_reconcile_registers_no_new_revision(kit: Any) -> None:
    _resolve_refs(kit)
    m = kit.manifest("TaskDefinition", "huntaze-onlyfans-scraper", SPEC)
    kit.reconcile(m)
    writes = kit.writes("ecs")
    kit.reconcile(m)
    kit.reconcile(m)
    assert writes.calls == []
    assert len(_revisions("huntaze-onlyfans-scraper")) == 1


def test_task_definition_equivalent_spelling_is_not_drift(kit: Any) -> None:
    _resolve_refs(kit)
    kit.reconcile(kit.manifest("TaskDefinition", "td", SPEC))
    spec = copy.deepcopy(SPEC)
    spec["cpu"], spec["memory"] = 1024, "2048"
    container = spec["containerDefinitions"][0]
    container["environment"].reverse()
    container["essential"] = True
    container["portMappings"] = [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]
    container["healthCheck"] = {**container["healthCheck"], "interval": 30, "retries": 3}
    assert not kit.delta(kit.manifest("TaskDefinition", "td", spec)).has_drift


def test_task_definition_image_change_registers_exactly_one_revision(kit: Any) -> None:
    _resolve_refs(kit)
    kit.reconcile(kit.manifest("TaskDefinition", "td", SPEC))
    spec = copy.deepcopy(SPEC)
    spec["containerDefinitions"][0]["image"] = SPEC["containerDefinitions"][0]["image"].replace(
        ":local", "@sha256:" + "d" * 64)
    changed = kit.manifest("TaskDefinition", "td", spec)
    assert [d.top for d in kit.delta(changed).drift] == ["containerDefinitions"]
    writes = kit.writes("ecs")
    live = kit.reconcile(changed)
    assert writes.calls == ["RegisterTaskDefinition"]
    assert live.outputs["revision"] == "2"
    assert not kit.delta(changed).has_drift


def test_task_definition_registered_behind_controller_is_seen_and_repaired(kit: Any) -> None:
    _resolve_refs(kit)
    m = kit.manifest("TaskDefinition", "td", SPEC)
    kit.reconcile(m)
    ecs = aws.client("ecs")
    current = ecs.describe_task_definition(taskDefinition="huntaze-onlyfans-scraper")["taskDefinition"]
    container = dict(current["containerDefinitions"][0], environment=[{"name": "HUNTAZE_SITE_URL", "value": "x"}])
    ecs.register_task_definition(
        family=current["family"],
        containerDefinitions=[container],
        **{k: current[k] for k in ("cpu", "memory", "networkMode", "requiresCompatibilities", "taskRoleArn")},
    )
    live = handler("TaskDefinition").read(m, kit.ctx)
    assert live is not None and live.owned  # an untagged revision in our family is drift, not a stranger
    drift = {d.top for d in kit.delta(m).drift}
    assert {"containerDefinitions", "executionRoleArn", "runtimePlatform", "tags"} <= drift
    kit.reconcile(m)
    assert not kit.delta(m).has_drift
    assert len(_revisions("huntaze-onlyfans-scraper")) == 3


def test_task_definition_latest_revision_deregistered_reads_previous_active(kit: Any) -> None:
    _resolve_refs(kit)
    m = kit.manifest("TaskDefinition", "td", SPEC)
    first = kit.reconcile(m)
    ecs = aws.client("ecs")
    current = ecs.describe_task_definition(taskDefinition=first.physical_id)["taskDefinition"]
    second = ecs.register_task_definition(
        family=current["family"],
        containerDefinitions=current["containerDefinitions"],
        **{k: current[k] for k in ("cpu", "memory", "networkMode", "requiresCompatibilities")},
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.deregister_task_definition(taskDefinition=second)
    live = handler("TaskDefinition").read(m, kit.ctx)
    assert live is not None and live.physical_id == first.physical_id


def test_task_definition_tag_drift_is_fixed_without_new_revision(kit: Any) -> None:
    _resolve_refs(kit)
    m = kit.manifest("TaskDefinition", "td", SPEC)
    live = kit.reconcile(m)
    aws.client("ecs").untag_resource(resourceArn=live.physical_id, tagKeys=["huntaze.io/resource"])
    assert [d.path for d in kit.delta(m).drift] == ["tags.huntaze.io/resource"]
    writes = kit.writes("ecs")
    kit.reconcile(m)
    assert writes.calls == ["TagResource"]
    assert len(_revisions("huntaze-onlyfans-scraper")) == 1


def test_task_definition_family_change_requires_replacement(kit: Any) -> None:
    _resolve_refs(kit)
    kit.reconcile(kit.manifest("TaskDefinition", "td", SPEC))
    renamed = kit.manifest("TaskDefinition", "td", {**SPEC, "family": "huntaze-scraper-v2"})
    delta = kit.delta(renamed)
    assert delta.replaced_fields == ["family"]
    assert "identity" in delta.having("requires_replacement")[0].reason


def test_task_definition_delete_deregisters_every_active_revision(kit: Any) -> None:
    _resolve_refs(kit)
    live = kit.reconcile(kit.manifest("TaskDefinition", "td", SPEC))
    assert [o.key.name for o in handler("TaskDefinition").list_owned(kit.ctx)] == ["td"]
    handler("TaskDefinition").delete(live, kit.ctx)
    assert _revisions("huntaze-onlyfans-scraper") == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cpu": 1024, "memory": 1024}, "memory: with cpu 1024 Fargate allows 2048..8192"),
        ({"cpu": "3 vCPU"}, "cpu: Fargate allows"),
        ({"networkMode": "bridge"}, "awsvpc"),
        ({"memory": "2 TB"}, "cannot read"),
    ],
)
def test_task_definition_spec_invalid_fargate_size_is_rejected(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        handler("TaskDefinition").spec_model.model_validate({**SPEC, **change})


def test_task_definition_spec_stop_timeout_out_of_range_names_bounds() -> None:
    spec = copy.deepcopy(SPEC)
    spec["containerDefinitions"][0]["stopTimeout"] = 121
    with pytest.raises(ValidationError, match=r"must be 2\.\.120"):
        handler("TaskDefinition").spec_model.model_validate(spec)
