"""Two `huntazectl controller run` processes on one stack: only the lease holder writes (counted per process from
its journal and from its own proxy's request log), a killed leader is replaced within the lease ttl, and a
leader paused (SIGSTOP) past its lease writes nothing when it resumes."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from tests.operator.aws_proxy import Fault
from tests.operator.conftest import (
    HANDOVER_S,
    INTERVAL_S,
    LEASE_TTL_S,
    ControllerProcess,
    apply_stack,
    set_sqs_attr,
    sqs_attr,
    wait_until,
)


def _leader_and_standby(controllers):  # type: ignore[no-untyped-def]
    a, b = controllers("ctl-a"), controllers("ctl-b")
    leader = wait_until(lambda: next((c for c in (a, b) if c.leading() and c.cycles()), None), 60, "a leader")
    standby = b if leader is a else a
    wait_until(lambda: "standby" in standby.output() or standby.proc.poll() is None, 10, "the standby to run")
    return leader, standby


def _edit_and_wait_corrected(value: str, by: ControllerProcess) -> None:
    set_sqs_attr("op-enforced", "VisibilityTimeout", value)
    wait_until(lambda: sqs_attr("op-enforced", "VisibilityTimeout") == "60", INTERVAL_S + 20,
               f"the console edit to {value} to be corrected")
    wait_until(lambda: any(r.resource == "Queue/op-enforced" and "corrected" in r.verdicts
                           and r.changes[0].live_before == int(value) for r in by.records()),
               INTERVAL_S, f"{by.name} to journal the correction of {value}")


@pytest.mark.soak
def test_controller_two_replicas_only_leader_writes_and_kill_hands_over_within_ttl(controllers, aws) -> None:  # type: ignore[no-untyped-def]
    assert apply_stack() == 0
    leader, standby = _leader_and_standby(controllers)
    for value in ("91", "92"):
        _edit_and_wait_corrected(value, leader)
    assert leader.proxy.resource_writes(), "the leader corrected the edits"
    assert standby.proxy.resource_writes() == []
    assert not [r for r in standby.records() if r.write_calls or r.type in ("resource", "cycle")]
    assert sum(r.write_calls for r in leader.records() if r.type == "resource") >= 2

    leader.proc.kill()
    killed_at = time.monotonic()
    wait_until(standby.leading, HANDOVER_S, f"the standby to take the lease within {HANDOVER_S:.1f}s of the kill")
    handover = time.monotonic() - killed_at
    _edit_and_wait_corrected("93", standby)
    assert standby.proxy.resource_writes()
    fencing = {r.fencing for r in leader.records() if r.type == "cycle"}
    new_fencing = {r.fencing for r in standby.records() if r.type == "cycle"}
    assert max(new_fencing) > max(fencing)  # type: ignore[type-var]
    print(f"handover after kill -9: {handover:.1f}s (lease ttl {LEASE_TTL_S}s)")


@pytest.mark.soak
def test_controller_paused_mid_cycle_past_its_lease_writes_nothing_after_sigcont(controllers, aws) -> None:  # type: ignore[no-untyped-def]
    assert apply_stack() == 0
    leader, standby = _leader_and_standby(controllers)
    # Keep the drift visible after the takeover (the new leader may not fix op-enforced), and hold the old
    # leader's read of op-enforced so it is stopped mid-cycle, between reading the drift and writing the fix.
    standby.proxy.faults.append(Fault("sqs", "AccessDenied", "op-enforced", operations=("SetQueueAttributes",)))
    release = threading.Event()
    held = Fault("sqs", "", "op-enforced", operations=("GetQueueAttributes",), times=1, hold=release)
    leader.proxy.faults.append(held)
    set_sqs_attr("op-enforced", "VisibilityTimeout", "94")
    wait_until(lambda: held.hits == 1, INTERVAL_S + 20, "the leader's next read of op-enforced")
    leader.signal(signal.SIGSTOP)
    wait_until(standby.leading, HANDOVER_S, f"the stopped leader's lease taken within {HANDOVER_S:.1f}s")
    before = len(leader.proxy.resource_writes())
    leader.signal(signal.SIGCONT)
    release.set()  # the old leader now sees the drift (94) and would correct it
    fenced = wait_until(
        lambda: [r for r in leader.records() if r.resource == "Queue/op-enforced" and r.error_class == "lease_lost"],
        30, "the resumed replica's write to be refused by its own lease check")
    assert "does not hold the lock" in (fenced[-1].error or "")
    assert len(leader.proxy.resource_writes()) == before, [w.operation for w in leader.proxy.resource_writes()]
    assert sqs_attr("op-enforced", "VisibilityTimeout") == "94"  # nobody wrote it: the old leader was fenced
    assert "LOST the lease" in leader.output()
