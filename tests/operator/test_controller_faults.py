"""The controller under AWS-side faults and a rogue writer (real processes; faults injected by each process's
proxy, never by mocking the controller): throttling backs off per resource, AccessDenied parks the resource as
terminal, a field flipped back N times trips the convergence guard, and the other resources keep converging."""

from __future__ import annotations

import json
import threading

import pytest

from controller.cli import main
from controller.journal import JournalRecord
from tests.operator.aws_proxy import Fault
from tests.operator.conftest import INTERVAL_S, apply_stack, set_sqs_attr, sqs_attr, wait_until


def _records(ctl, resource: str):  # type: ignore[no-untyped-def]
    return [r for r in ctl.records() if r.resource == resource]


@pytest.mark.soak
def test_controller_throttled_resource_backs_off_denied_one_is_terminal_others_converge(controllers, aws) -> None:  # type: ignore[no-untyped-def]
    assert apply_stack() == 0
    ctl = controllers("faulty")
    wait_until(ctl.cycles, 60, "the first cycle")
    throttle = Fault("sqs", "ThrottlingException", "op-other", operations=("SetQueueAttributes",))
    deny = Fault("sqs", "AccessDenied", "op-enforced", status=403, operations=("SetQueueAttributes",))
    ctl.proxy.faults.extend([throttle, deny])
    set_sqs_attr("op-other", "VisibilityTimeout", "11")
    set_sqs_attr("op-enforced", "VisibilityTimeout", "12")
    set_sqs_attr("op-paused", "VisibilityTimeout", "13")
    # op-other: temporary, requeued with growing delays (per-resource backoff).
    requeued = wait_until(lambda: [r for r in _records(ctl, "Queue/op-other") if "requeued" in r.verdicts][2:],
                          60, "three requeues of the throttled queue")
    delays = [r.retry_in_s for r in _records(ctl, "Queue/op-other") if r.retry_in_s]
    assert all(r.error_class == "temporary" and "ThrottlingException" in (r.error or "") for r in requeued)
    assert delays[1] > delays[0] * 1.5 and delays[2] > delays[1] * 1.5, delays
    # op-enforced: terminal, not retried while nothing changes.
    denied = [r for r in _records(ctl, "Queue/op-enforced") if r.error_class == "terminal"]
    assert denied and "AccessDenied" in (denied[0].error or "") and "terminal" in denied[0].verdicts
    cycles_then = len(ctl.cycles())
    wait_until(lambda: len(ctl.cycles()) >= cycles_then + 2, 3 * INTERVAL_S + 20, "two more cycles")
    assert deny.hits == 1, "a terminal error is not retried until the spec or the live resource changes"
    # The throttling ends: op-other converges at its next requeue; a live change unparks op-enforced.
    ctl.proxy.faults.remove(throttle)
    wait_until(lambda: sqs_attr("op-other", "VisibilityTimeout") == "45", 120, "op-other to converge")
    ctl.proxy.faults.remove(deny)
    set_sqs_attr("op-enforced", "VisibilityTimeout", "14")
    wait_until(lambda: sqs_attr("op-enforced", "VisibilityTimeout") == "60", 3 * INTERVAL_S + 20,
               "op-enforced to be retried after its live state changed")
    assert sqs_attr("op-paused", "VisibilityTimeout") == "13"


@pytest.mark.soak
def test_controller_rogue_writer_trips_the_guard_history_shows_why_resume_clears(
    controllers, aws, capsys  # type: ignore[no-untyped-def]
) -> None:
    assert apply_stack() == 0
    ctl = controllers("guarded", "--guard-flips", "3")
    wait_until(ctl.cycles, 60, "the first cycle")
    stop = threading.Event()
    rogue_errors: list[str] = []

    def rogue() -> None:  # flips the field back every time the controller corrected it
        value = 100
        while not stop.is_set():
            try:  # a slow moto answer must not end the rogue writer (an uncaught error would end the thread)
                if sqs_attr("op-enforced", "VisibilityTimeout") == "60":
                    value += 1
                    set_sqs_attr("op-enforced", "VisibilityTimeout", str(value))
            except Exception as exc:
                rogue_errors.append(f"{type(exc).__name__}: {exc}")
            stop.wait(0.3)

    def tripped() -> list[JournalRecord]:
        return [r for r in ctl.records() if r.type == "guard" and r.action == "non-converging"]

    thread = threading.Thread(target=rogue, daemon=True)
    thread.start()
    try:
        try:
            mark = wait_until(tripped, 15 * INTERVAL_S + 30, "the guard to trip")[0]
        except AssertionError as exc:  # say what the controller saw, for the next reader of a CI log
            seen = [(r.time, r.action, r.verdicts, r.error) for r in _records(ctl, "Queue/op-enforced")]
            raise AssertionError(f"{exc}; op-enforced records {seen}; rogue errors {rogue_errors[-5:]}; "
                                 f"cycles {len(ctl.cycles())}; controller log tail:\n{ctl.output()[-3000:]}") from None
        writes_at_mark = len([w for w in ctl.proxy.resource_writes() if "op-enforced" in w.body])
        set_sqs_attr("op-other", "VisibilityTimeout", "21")  # another resource is still reconciled
        wait_until(lambda: sqs_attr("op-other", "VisibilityTimeout") == "45", INTERVAL_S + 20, "op-other fixed")
        assert len([w for w in ctl.proxy.resource_writes() if "op-enforced" in w.body]) == writes_at_mark
    finally:
        stop.set()
        thread.join(5)
    assert mark.guard is not None
    assert (mark.guard["field"], mark.guard["desired"], mark.guard["flips"]) == ("visibilityTimeout", 60, 3)
    assert len(mark.guard["flip_times"]) == 3
    capsys.readouterr()
    assert main(["history", "--journal-file", str(ctl.journal), "--resource", "Queue/op-enforced", "-o", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    row = shown["resources"]["Queue/op-enforced"]
    assert row["non_converging"]["field"] == "visibilityTimeout" and row["drifted"] >= 3
    assert main(["history", "--journal-file", str(ctl.journal)]) == 0
    assert "NON-CONVERGING" in capsys.readouterr().out
    assert main(["controller", "resume", "Queue/op-enforced", "--env", "local"]) == 0
    wait_until(lambda: sqs_attr("op-enforced", "VisibilityTimeout") == "60", 2 * INTERVAL_S + 20,
               "the resumed resource to be corrected again")
    assert any(r.type == "guard" and r.action == "resumed" for r in ctl.records())
