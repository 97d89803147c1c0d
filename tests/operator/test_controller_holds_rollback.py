"""The controller does not fight the deployment engine: a release the local plane's circuit breaker rolled back is
held (journaled as `held`, never drift, never re-released, no guard flips) until the TaskDefinition spec changes.

A real `huntazectl controller run` (enforce mode, scaled interval) reconciles a stack of a Cluster, a TaskDefinition
and a Service with the breaker and rollback on (`tests.helpers.service_release`); the test process is the local
plane: a real `ServiceRunner` with real task processes. The bad release's task exits at once, so the breaker
(3 failures in a row) trips within a few runner passes; the old task keeps running throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controller import rollback_mark
from controller.oncall.collect import Snapshot, collect_controller
from controller.oncall.diagnosis import diagnose
from localplane.deployments import COMPLETED, ROLLED_BACK
from tests.helpers.service_release import drive, release_stack, runner, service, write_stack
from tests.operator.conftest import INTERVAL_S, ControllerProcess, apply_stack

CYCLES_HELD = 2  # full controller cycles watched while held


def full_cycles(controller: ControllerProcess) -> int:
    return sum(1 for r in controller.cycles() if r.action == "full")


@pytest.mark.soak  # about 25 s on an idle 2-core machine (a rollback, 2 controller cycles, a fixed release)
def test_controller_holds_a_release_the_breaker_rolled_back_until_the_spec_changes(
    controllers: Callable[..., ControllerProcess], tmp_path: Path
) -> None:
    specs, script = release_stack(tmp_path, "good-1")
    assert apply_stack(specs) == 0
    plane = runner(tmp_path)
    try:
        drive(plane, lambda: plane.deployment and plane.deployment.rollout_state == COMPLETED, 120, "v1 running")
        v1 = plane.deployment.task_definition if plane.deployment else ""
        [old_task] = [t.proc.pid for t in plane.tasks]
        controller = controllers("holder", specs=specs)

        write_stack(specs, script, "bad")  # the controller reloads, registers :2 and updates the service
        drive(plane, lambda: any(d.rollout_state == ROLLED_BACK for d in plane.history), 240, "the rollback")
        [bad] = [d for d in plane.history if d.rollout_state == ROLLED_BACK]
        assert bad.task_definition.endswith("hold-task:2") and service()["taskDefinition"] == v1

        seen = full_cycles(controller)
        drive(plane, lambda: full_cycles(controller) >= seen + CYCLES_HELD, INTERVAL_S * (CYCLES_HELD + 2) + 10,
              f"{CYCLES_HELD} more controller cycles")
        assert service()["taskDefinition"] == v1 and [t.proc.pid for t in plane.tasks] == [old_task]
        assert [d.task_definition for d in plane.history].count(bad.task_definition) == 1  # released once
        records = controller.records()
        held = [r for r in records if r.type == "resource" and r.resource == "Service/hold-svc"
                and "held" in (r.verdicts or [])]
        assert len(held) >= CYCLES_HELD, [r.model_dump() for r in records if r.resource == "Service/hold-svc"]
        assert all(r.action == "held" and "drift" not in (r.verdicts or []) for r in held)
        assert held[-1].message.startswith("held: rolled back from hold-task:2 (circuit breaker: 3 new task s in "
                                           "a row failed"), held[-1].message
        assert "next: fix the TaskDefinition spec and apply" in held[-1].message
        assert [c.field for c in held[-1].changes] == ["taskDefinition"]
        assert not [r for r in records if r.type == "guard"]  # no flip, no non-converging mark
        assert all((r.counts or {}).get("held") == 1 for r in controller.cycles()[-CYCLES_HELD:])
        # `huntazectl status` reads the same journal: the controller section lists it, the diagnosis names it.
        section = collect_controller("local", str(controller.journal))
        assert section["resources_by_state"].get("held: rolled back") == 1
        assert [h["resource"] for h in section["held"]] == ["Service/hold-svc"]
        assert "Service/hold-svc" not in [d["resource"] for d in section["drifted"]]  # only the spec edits are
        snapshot = Snapshot(at=section["held"][0]["at"], env="local", controller=section)
        assert diagnose(snapshot)[0].rule == "release_held"

        write_stack(specs, script, "good-3")  # the fix: a new revision, released as usual
        drive(plane, lambda: plane.deployment and plane.deployment.task_definition.endswith("hold-task:3")
              and plane.deployment.rollout_state == COMPLETED, 240, "the fixed release")
        released = [r for r in controller.records() if r.resource == "Service/hold-svc"
                    and "released" in (r.verdicts or [])]
        assert released and released[-1].action == "updated", [r.model_dump() for r in controller.records()[-5:]]
        assert not [t for t in service().get("tags", []) if t["key"].startswith(rollback_mark.PREFIX)]
    finally:
        plane.stop_all()
