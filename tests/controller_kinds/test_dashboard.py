"""Dashboard kind against moto: body compared as parsed JSON, drift repaired."""

from __future__ import annotations

import json
from typing import Any

from common import aws

SPEC: dict[str, Any] = {
    "dashboardName": "Huntaze-OnlyFans-Scraper",
    "body": {
        "widgets": [
            {
                "type": "metric",
                "x": 0,
                "y": 0,
                "width": 12,
                "properties": {
                    "title": "Queue Depth",
                    "region": "us-east-1",
                    "metrics": [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "q.fifo"]],
                },
            },
            {"type": "text", "x": 12, "y": 0, "properties": {"markdown": "# Huntaze"}},
        ]
    },
}


def test_dashboard_create_then_read_has_no_diff(kit: Any) -> None:
    m = kit.manifest("Dashboard", "huntaze", SPEC)
    kit.reconcile(m)
    assert not kit.delta(m).has_drift
    writes = kit.writes("cloudwatch")
    kit.reconcile(m)
    assert writes.calls == []


def test_dashboard_body_reordered_keys_is_not_drift(kit: Any) -> None:
    m = kit.manifest("Dashboard", "huntaze", SPEC)
    body = kit.reconcile(m).fields["body"]
    text = json.dumps(body, indent=4)  # pretty text, same content
    aws.client("cloudwatch").put_dashboard(DashboardName="Huntaze-OnlyFans-Scraper", DashboardBody=text)
    assert not kit.delta(m).has_drift


def test_dashboard_widget_edited_behind_controller_is_repaired(kit: Any) -> None:
    m = kit.manifest("Dashboard", "huntaze", SPEC)
    body = kit.reconcile(m).fields["body"]
    body["widgets"][0]["properties"]["title"] = "edited in the console"
    aws.client("cloudwatch").put_dashboard(DashboardName="Huntaze-OnlyFans-Scraper", DashboardBody=json.dumps(body))
    assert [d.path for d in kit.delta(m).drift] == ["body.widgets"]
    writes = kit.writes("cloudwatch")
    kit.reconcile(m)
    assert writes.calls == ["PutDashboard"]
    assert not kit.delta(m).has_drift


def test_dashboard_untaggable_on_moto_is_owned_through_its_footer(kit: Any) -> None:
    from controller.kinds.registry import handler

    live = kit.reconcile(kit.manifest("Dashboard", "huntaze", SPEC))
    assert live.tags == {}  # moto cannot tag dashboards
    footer = live.fields["body"]["widgets"][-1]
    assert footer["type"] == "text" and "huntaze-test" in footer["properties"]["markdown"]
    assert live.owned
    owned = handler("Dashboard").list_owned(kit.ctx)
    assert [str(o.key) for o in owned] == ["Dashboard/huntaze"]


def test_dashboard_without_footer_is_not_owned(kit: Any) -> None:
    from controller.kinds.registry import handler

    aws.client("cloudwatch").put_dashboard(
        DashboardName="Huntaze-OnlyFans-Scraper",
        DashboardBody=json.dumps({"widgets": [{"type": "text", "properties": {"markdown": "hand made"}}]}),
    )
    live = handler("Dashboard").read(kit.manifest("Dashboard", "huntaze", SPEC), kit.ctx)
    assert live is not None and not live.owned
    assert handler("Dashboard").list_owned(kit.ctx) == []
