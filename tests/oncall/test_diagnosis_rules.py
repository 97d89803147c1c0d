"""The diagnosis table rule by rule, on snapshots shaped like `collect` builds them (fast, no services).

Each rule is also staged for real on the local stack in test_status_incidents.py; this file checks that a rule
fires on its own evidence, stays quiet on a healthy snapshot, and that the table's order puts root causes first.
"""

from __future__ import annotations

from datetime import datetime, timedelta
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


def corrected_drift(seconds_ago: float, corrected: bool = True) -> dict[str, Any]:
    at = datetime.fromisoformat(healthy().at) - timedelta(seconds=seconds_ago)
    return {"present": True, "source": "journal.jsonl", "drifted": [{
        "resource": "Queue/huntaze-hybrid-workflows.fifo", "fields": ["visibilityTimeout"], "corrected": corrected,
        "at": at.isoformat()}]}


def live(cause: str) -> Snapshot:
    """A snapshot with one live cause, as collect shapes it."""
    snap = healthy()
    if cause == "dlq_invalid_jobs":
        snap.dead_letters = {"total": 12, "sampled": 10, "by_class": {"validation": 10},
                             "top_validation_errors": ["timestamp: Field required"], "platform_classes": {}}
    elif cause == "dlq_platform_failures":
        snap.dead_letters = {"total": 3, "sampled": 3, "by_class": {"network": 3}, "top_validation_errors": [],
                             "platform_classes": {"network": 3}, "platform_examples": ["HTTP 503"]}
    elif cause == "breaker_open":
        snap.gate = {**snap.gate, "breaker": {"state": "open", "closes_in_s": 40.0, "reason": "429", "opens": 1}}
    elif cause == "redis_unreachable":
        snap.gate = {"redis_reachable": False, "redis_error": "ConnectionError: refused", "limits": [],
                     "breaker": {"state": "unknown"}}
    elif cause == "scraper_crash_loop":
        snap.scraper = {**snap.scraper, "running": 0, "recent_stops": [
            {"task": f"t{i}", "reason": "Essential container in task exited (exit code 1): bad env",
             "task_definition": "td:1"} for i in range(2)]}
    return snap


@pytest.mark.parametrize("cause", ["dlq_invalid_jobs", "dlq_platform_failures", "breaker_open",
                                   "redis_unreachable", "scraper_crash_loop"])
def test_diagnosis_corrected_drift_never_outranks_a_live_cause(cause: str) -> None:
    snap = live(cause)
    snap.controller = corrected_drift(seconds_ago=30)  # corrected half a minute ago: the freshest news
    found = diagnose(snap)
    assert found[0].rule == cause and found[0].kind == "cause"
    assert found[-1].rule == "drift_corrected" and found[-1].kind == "note"
    assert "spec_drifted" not in [f.rule for f in found]


def test_diagnosis_corrected_drift_alone_is_a_note_under_healthy() -> None:
    found = diagnose(healthy(controller=corrected_drift(seconds_ago=60)))
    assert [(f.rule, f.kind) for f in found] == [("healthy", "cause"), ("drift_corrected", "note")]
    assert "1 note(s) below" in found[0].cause
    note = found[1]
    assert "visibilityTimeout" in note.cause and "corrected" in note.cause and "60s ago" in note.evidence
    assert note.next.startswith("huntazectl history --resource Queue/huntaze-hybrid-workflows.fifo")


def test_diagnosis_corrected_drift_older_than_15_minutes_is_not_reported() -> None:
    assert [f.rule for f in diagnose(healthy(controller=corrected_drift(seconds_ago=901)))] == ["healthy"]
    assert [f.rule for f in diagnose(healthy(controller=corrected_drift(seconds_ago=899)))][-1] == "drift_corrected"


def test_diagnosis_half_open_breaker_is_not_reported_as_holding_every_job() -> None:
    snap = live("breaker_open")
    assert diagnose(snap)[0].rule == "breaker_open"
    snap.gate = {**snap.gate, "breaker": {"state": "half_open", "opens": 1, "failures": 0}}
    assert diagnose(snap)[0].rule == "healthy"


def test_diagnosis_uncorrected_drift_stays_a_cause() -> None:
    found = diagnose(healthy(controller=corrected_drift(seconds_ago=30, corrected=False)))
    assert (found[0].rule, found[0].kind) == ("spec_drifted", "cause")
    assert "not corrected" in found[0].evidence


def deploys(*states: tuple[str, str, str], finished: str = "2026-12-01T02:59:00+00:00") -> list[dict[str, Any]]:
    """Deployment records as collect shapes them: (task definition, rolloutState, reason), oldest first."""
    return [{"id": f"local-{i}", "task_definition": td, "previous_task_definition": "td:1", "rollout_state": state,
             "rollout_state_reason": reason, "failed_tasks": 3, "finished_at": finished}
            for i, (td, state, reason) in enumerate(states, 1)]


EXIT = "Essential container in task exited (exit code 1): HUNTAZE_CONCURRENCY: 'many' is not an integer"
BREAKER = "circuit breaker: 3 new task(s) in a row failed to start or pass their health check (threshold 3)"


def scraper_after(deployments: list[dict[str, Any]], on: str) -> dict[str, Any]:
    stops = [{"task": f"t{i}", "reason": EXIT, "task_definition": "td:2"} for i in range(3)]
    return {"service": "s", "desired": 1, "running": 1, "task_definition": on, "recent_stops": stops,
            "deployments": deployments}


def test_diagnosis_deployment_rolled_back_by_the_breaker_is_a_note_naming_revision_and_exit() -> None:
    rolled = deploys(("td:1", "COMPLETED", ""), ("td:2", "ROLLED_BACK", f"{BREAKER}; rolled back to td:1"),
                     ("td:1", "COMPLETED", "1 task(s) of the new task definition running"))
    found = diagnose(healthy(scraper=scraper_after(rolled, on="td:1")))
    assert [(f.rule, f.kind) for f in found] == [("healthy", "cause"), ("deployment_rolled_back", "note")]
    note = found[1]
    assert "td:2" in note.cause and "rolled back to td:1" in note.cause and "'many'" in note.cause
    assert "circuit breaker" in note.evidence and "ROLLED_BACK" in note.evidence
    assert note.next.startswith("huntazectl rollout status service s")


def test_diagnosis_deployment_rolled_back_over_15_minutes_ago_is_not_reported() -> None:
    rolled = deploys(("td:2", "ROLLED_BACK", BREAKER), ("td:1", "COMPLETED", ""),
                     finished="2026-12-01T02:44:59+00:00")
    assert [f.rule for f in diagnose(healthy(scraper=scraper_after(rolled, on="td:1")))] == ["healthy"]


def test_diagnosis_failed_deployment_still_on_its_revision_is_a_cause() -> None:
    failed = deploys(("td:1", "COMPLETED", ""), ("td:2", "FAILED", f"{BREAKER}; rollback is off"))
    head = diagnose(healthy(scraper=scraper_after(failed, on="td:2")))[0]
    # the breaker stopped the loop: the exits are its evidence, not a live crash loop
    assert head.rule == "deployment_failed" and head.kind == "cause"
    assert "td:2" in head.cause and "'many'" in head.cause and "rollback is off" in head.evidence
    assert head.next.startswith("huntazectl rollout status service s")


def test_diagnosis_superseded_deployment_is_not_a_failure() -> None:
    undone = deploys(("td:1", "COMPLETED", ""), ("td:2", "FAILED", "superseded by a newer task definition (td:1)"),
                     ("td:1", "COMPLETED", ""))
    assert [f.rule for f in diagnose(healthy(scraper=scraper_after(undone, on="td:1")))] == ["healthy"]


def test_diagnosis_release_held_names_the_rollout_to_read_and_is_not_spec_drift() -> None:
    held = {"present": True, "source": "journal.jsonl", "drifted": [], "held": [{
        "resource": "Service/huntaze-onlyfans-scraper", "at": "2026-12-01T02:59:00+00:00", "fields": ["taskDefinition"],
        "message": "held: rolled back from huntaze-onlyfans-scraper:7 (circuit breaker ...); next: fix the spec"}]}
    [found] = diagnose(healthy(controller=held))
    assert found.rule == "release_held" and found.kind == "cause"
    assert "rolled back; the controller holds it on the old release (not drift)" in found.cause
    assert "held: rolled back from huntaze-onlyfans-scraper:7" in found.evidence
    assert found.next.startswith("huntazectl rollout status service huntaze-onlyfans-scraper")


# alarm_without_rule (the fallback for an alarm no cause rule explains) is checked above, on a snapshot;
# drift_corrected (a note) is staged for real in test_status_notes.py, deployment_rolled_back (a note) in
# test_status_incidents.py; release_held from a real controller's journal in
# tests/operator/test_controller_holds_rollback.py (a real breaker rollback, soak).
@pytest.mark.parametrize("rule", [r.__name__ for r in RULES if r.__name__ not in (
    "alarm_without_rule", "drift_corrected", "deployment_rolled_back", "release_held")])
def test_diagnosis_every_cause_rule_is_staged_for_real(rule: str) -> None:
    staged = (Path(__file__).parent / "test_status_incidents.py").read_text()
    name = {"backlog_limit": "backlog_rate_limit"}.get(rule, rule)
    assert f'head["rule"] == "{name}"' in staged, f"rule {rule} has no staged incident test"


def test_status_finds_the_current_run_dir_as_the_local_stack_names_it() -> None:
    from controller.oncall import deployments
    from localplane import stack

    assert deployments.CURRENT_FILE == stack.CURRENT_FILE
