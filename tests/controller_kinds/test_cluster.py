"""Cluster kind against moto: create, no-op, drift behind the controller's back, repair, ownership."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from common import aws
from controller.kinds.registry import handler

SPEC: dict[str, Any] = {
    "capacityProviders": ["FARGATE_SPOT", "FARGATE"],
    "defaultCapacityProviderStrategy": [
        {"capacityProvider": "FARGATE_SPOT", "weight": 70},
        {"capacityProvider": "FARGATE", "weight": 30, "base": 1},
    ],
}


def test_cluster_create_then_read_has_no_diff(kit: Any) -> None:
    m = kit.manifest("Cluster", "huntaze", SPEC)
    live = kit.reconcile(m)
    assert live.owned and live.outputs["name"] == "huntaze"
    assert not kit.delta(m).has_drift


def test_cluster_second_reconcile_makes_no_write_call(kit: Any) -> None:
    m = kit.manifest("Cluster", "huntaze", SPEC)
    kit.reconcile(m)
    writes = kit.writes("ecs")
    kit.reconcile(m)
    assert writes.calls == []


def test_cluster_strategy_changed_behind_controller_is_repaired(kit: Any) -> None:
    m = kit.manifest("Cluster", "huntaze", SPEC)
    kit.reconcile(m)
    aws.client("ecs").put_cluster_capacity_providers(
        cluster="huntaze", capacityProviders=["FARGATE"], defaultCapacityProviderStrategy=[]
    )
    drift = {d.top for d in kit.delta(m).drift}
    assert drift == {"capacityProviders", "defaultCapacityProviderStrategy"}
    writes = kit.writes("ecs")
    kit.reconcile(m)
    assert writes.calls == ["PutClusterCapacityProviders"]
    assert not kit.delta(m).has_drift


def test_cluster_container_insights_drift_is_repaired_with_update_cluster(kit: Any) -> None:
    m = kit.manifest("Cluster", "huntaze", {**SPEC, "containerInsights": "enabled"})
    kit.reconcile(m)
    aws.client("ecs").update_cluster(cluster="huntaze", settings=[{"name": "containerInsights", "value": "disabled"}])
    assert [d.top for d in kit.delta(m).drift] == ["containerInsights"]
    kit.reconcile(m)
    assert not kit.delta(m).has_drift


def test_cluster_list_owned_skips_unowned_clusters(kit: Any) -> None:
    kit.reconcile(kit.manifest("Cluster", "huntaze", SPEC))
    aws.client("ecs").create_cluster(clusterName="someone-else")
    owned = handler("Cluster").list_owned(kit.ctx)
    assert [str(o.key) for o in owned] == ["Cluster/huntaze"]


def test_cluster_spec_unknown_provider_is_rejected() -> None:
    with pytest.raises(ValidationError, match="capacityProviders"):
        handler("Cluster").spec_model.model_validate({"capacityProviders": ["EC2"]})
