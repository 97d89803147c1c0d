"""The diagnosis table rule by rule, on snapshots shaped like `collect` builds them (fast, no services).

Each rule is also staged for real on the local stack in test_status_incidents.py; this file checks that a rule
fires on its own evidence, stays quiet on a healthy snapshot, and that the table's order puts root causes first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.oncall.collect import Snapshot
from controller.oncall.diagnosis import RULES, diagnose


def healthy(**over: Any) -> Snapshot:
    snap = Snapshot(at="2026-12-01T03:00:00+00:00", env="local")
    snap.queues = [{"name": n, "role": r, "depth": 0, "in_flight": 0, "delayed": 0, "oldest_age_s": 0}
                   for n, r in (("in", "ingress"), ("wf", "workflows"), ("dl", "ingress_dlq"),
                                ("wdl", "workflows_dlq"))]
    snap.gate = {"redis_reachable": True, "limits": [{"scope": "global", "limit": 6, "window_s": 10,
                                                     "admitted_in_window": 2, "reserved_ahead": 0}],
                 "breaker": {"state": "closed"}}
    snap.scraper = {"service": "s", "desired": 1, "running": 1, "task_definition": "td:1", "recent_stops": []}
    snap.alarms = {"total": 9, "in_alarm": []}
    snap.controller = {"present": False}
    for key, value in over.items():
        setattr(snap, key, value)
    return snap


def test_diagnosis_healthy_snapshot_fires_no_rule() -> None:
    assert [f.rule for f in diagnose(healthy())] == ["healthy"]


def test_diagnosis_alarm_without_a_specific_rule_points_to_its_runbook() -> None:
    alarm = {"name": "ecs_cpu_high", "description": "CPU above 70 %", "value": 91.0, "threshold": 70.0,
             "since": "2026-12-01T02:50:00+00:00", "runbook": "docs/runbook.md#ecs-cpu-high"}
    finding = diagnose(healthy(alarms={"total": 9, "in_alarm": [alarm]}))[0]
    assert finding.rule == "alarm" and "ecs_cpu_high" in finding.cause
    assert "91.0" in finding.evidence and finding.next.endswith("docs/runbook.md#ecs-cpu-high")


def test_diagnosis_old_revision_exits_are_not_a_crash_loop() -> None:
    stops = [{"task": f"t{i}", "reason": "Essential container in task exited (exit code 1): boom",
              "task_definition": "td:1"} for i in range(3)]
    looping = healthy(scraper={"service": "s", "desired": 1, "running": 0, "task_definition": "td:1",
                               "recent_stops": stops})
    assert diagnose(looping)[0].rule == "scraper_crash_loop"
    fixed = healthy(scraper={"service": "s", "desired": 1, "running": 1, "task_definition": "td:2",
                             "recent_stops": stops})
    assert diagnose(fixed)[0].rule == "healthy"


def test_diagnosis_redis_down_outranks_its_symptoms() -> None:
    snap = healthy()
    snap.gate = {"redis_reachable": False, "redis_error": "ConnectionError: refused", "limits": [],
                 "breaker": {"state": "unknown"}}
    snap.queues[0]["delayed"] = 40
    snap.scraper = {"service": "s", "desired": 1, "running": 0, "task_definition": "td:1", "recent_stops": []}
    snap.queues[1]["depth"] = 3
    rules = [f.rule for f in diagnose(snap)]
    assert rules[0] == "redis_unreachable" and "backlog_workers" in rules


# alarm_without_rule (the fallback for an alarm no cause rule explains) is checked above, on a snapshot.
@pytest.mark.parametrize("rule", [r.__name__ for r in RULES if r.__name__ != "alarm_without_rule"])
def test_diagnosis_every_cause_rule_is_staged_for_real(rule: str) -> None:
    staged = (Path(__file__).parent / "test_status_incidents.py").read_text()
    name = {"backlog_limit": "backlog_rate_limit"}.get(rule, rule)
    assert f'head["rule"] == "{name}"' in staged, f"rule {rule} has no staged incident test"
