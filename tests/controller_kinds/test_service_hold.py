"""A service taken back from a task definition revision (`rollout undo`, or ECS's breaker) is held by the Service
kind, not released again, until the TaskDefinition spec resolves to another revision. Moto over HTTP; the local
plane's breaker rollback end to end is in tests/operator/test_controller_holds_rollback.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common import aws
from controller import rollback_mark
from controller.diff import Verdict
from controller.report import drift_data, drift_text

CLUSTER: dict[str, Any] = {"defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}]}
TASK: dict[str, Any] = {
    "family": "huntaze-onlyfans-scraper",
    "cpu": 1024,
    "memory": 2048,
    "containerDefinitions": [{"name": "playwright-scraper", "image": "scraper:1"}],
}
SERVICE: dict[str, Any] = {
    "serviceName": "huntaze-onlyfans-scraper",
    "clusterRef": "huntaze",
    "taskDefinitionRef": "huntaze-onlyfans-scraper",
    "desiredCount": 1,
    "capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}],
    "networkConfiguration": {"awsvpcConfiguration": {"subnetsFrom": "default-vpc"}},
    "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
}


def _image(image: str) -> dict[str, Any]:
    return {**TASK, "containerDefinitions": [{"name": "playwright-scraper", "image": image}]}


def _released_then_undone(kit: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Any, str, str]:
    """Revision 1 then 2 applied; on-call runs `rollout undo service`: the service is back on 1."""
    from controller.cli import main

    kit.reconcile(kit.manifest("Cluster", "huntaze", CLUSTER))
    v1 = kit.reconcile(kit.manifest("TaskDefinition", "huntaze-onlyfans-scraper", TASK)).outputs["arn"]
    service = kit.manifest("Service", "huntaze-onlyfans-scraper", SERVICE)
    kit.reconcile(service)
    v2 = kit.reconcile(kit.manifest("TaskDefinition", "huntaze-onlyfans-scraper", _image("scraper:2"))).outputs["arn"]
    assert kit.reconcile(service).fields["taskDefinition"] == v2
    assert main(["rollout", "undo", "service", "huntaze-onlyfans-scraper", "--run-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "holds the service on huntaze-onlyfans-scraper:1 (held: rolled back)" in out, out
    return service, v1, v2


def _apply_held(kit: Any, manifest: Any) -> str:
    """Apply through the real reconciler; the resource is held: unchanged, with the hold's sentence."""
    from controller.reconciler import Action, ApplyOptions, Reconciler

    [result] = Reconciler(kit.ctx).apply(kit.stack_of(manifest), ApplyOptions(concurrency=1))
    assert result.action is Action.UNCHANGED and not result.failed, result
    assert result.message.startswith("held: rolled back from "), result.message
    return result.message


def _live_service() -> dict[str, Any]:
    found: dict[str, Any] = aws.client("ecs").describe_services(
        cluster="huntaze", services=["huntaze-onlyfans-scraper"], include=["TAGS"])["services"][0]
    return found


def test_service_undone_by_on_call_is_held_not_drift_and_not_written(
    kit: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service, v1, v2 = _released_then_undone(kit, tmp_path, capsys)
    delta = kit.delta(service)
    assert not delta.has_drift, delta.as_dict()
    [held] = delta.held
    assert (held.path, held.desired, held.live, held.verdict) == ("taskDefinition", v2, v1, Verdict.HELD)
    assert held.reason.startswith("held: rolled back from huntaze-onlyfans-scraper:2 (rolled back by `huntazectl "
                                  "rollout undo`, at ")
    assert held.reason.endswith("next: fix the TaskDefinition spec and apply (its new revision is released), or "
                                "see `huntazectl rollout status service huntaze-onlyfans-scraper`")
    writes = kit.writes("ecs")
    _apply_held(kit, service)
    assert writes.calls == [] and _live_service()["taskDefinition"] == v1
    # The mark's tags are not the spec's: they are never "corrected" away as tag drift.
    assert "tags" not in [f.top for f in delta.fields if f.verdict is not Verdict.EQUAL]


def test_service_held_shows_in_the_drift_report_as_its_own_state(
    kit: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from controller.reconciler import Reconciler

    service, _, _ = _released_then_undone(kit, tmp_path, capsys)
    [result] = Reconciler(kit.ctx).plan(kit.stack_of(service))
    data = drift_data([result], [])
    assert data["resources"][0]["status"] == "held: rolled back"
    assert data["summary"]["drifted"] == 0 and data["summary"]["exitCode"] == 0
    assert data["summary"]["text"].startswith("no drift (1 held: rolled back by a deployment engine")
    text = drift_text(data)
    assert "Service/huntaze-onlyfans-scraper: held: rolled back" in text
    assert "taskDefinition: desired " in text and "(held: held: rolled back from huntaze-onlyfans-scraper:2" in text


def test_service_held_is_released_when_the_spec_asks_for_another_revision(
    kit: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service, _, _ = _released_then_undone(kit, tmp_path, capsys)
    v3 = kit.reconcile(kit.manifest("TaskDefinition", "huntaze-onlyfans-scraper", _image("scraper:3"))).outputs["arn"]
    delta = kit.delta(service)
    assert delta.changed_fields == ["taskDefinition"] and not delta.held
    writes = kit.writes("ecs")
    live = kit.reconcile(service)
    assert writes.calls == ["UntagResource", "UpdateService"]
    assert live.fields["taskDefinition"] == v3 and live.hold is None
    assert not [t for t in _live_service().get("tags", []) if t["key"].startswith(rollback_mark.PREFIX)]


def test_rollback_mark_from_ecs_deployments_reads_a_listed_failed_deployment() -> None:
    v1, v2 = "arn:aws:ecs:us-east-1:1:task-definition/s:1", "arn:aws:ecs:us-east-1:1:task-definition/s:2"
    failed = {"status": "ACTIVE", "taskDefinition": v2, "rolloutState": "FAILED",
              "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.", "updatedAt": "t"}
    primary = {"status": "PRIMARY", "taskDefinition": v1, "rolloutState": "IN_PROGRESS"}
    mark = rollback_mark.from_deployments({"taskDefinition": v1, "deployments": [primary, failed]})
    assert mark == rollback_mark.RollbackMark(v2, rollback_mark.ENGINE,
                                              "ECS deployment circuit breaker: tasks failed to start.", "t")
    assert rollback_mark.from_deployments({"taskDefinition": v1, "deployments": [primary]}) is None
    in_progress = {**failed, "rolloutState": "IN_PROGRESS"}
    assert rollback_mark.from_deployments({"taskDefinition": v1, "deployments": [primary, in_progress]}) is None


def test_rollback_mark_reason_keeps_only_characters_aws_allows_in_a_tag_value() -> None:
    reason = "circuit breaker: 3 new task(s) in a row failed; rolled back to arn:aws:ecs:x:1:task-definition/s:1"
    value = rollback_mark.tag_value(reason)
    assert value == ("circuit breaker: 3 new task s in a row failed rolled back to "
                     "arn:aws:ecs:x:1:task-definition/s:1")
    assert len(rollback_mark.tag_value("x" * 400)) == 256
