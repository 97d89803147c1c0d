"""`huntazectl controller run` as a real process against moto: console edits corrected in enforce mode, only
journaled in observe mode, paused resources never touched; SIGTERM releases the lease and exits 0."""

from __future__ import annotations

import signal
import time

from common.aws import client
from controller.lease import LEASE_TABLE
from tests.operator.conftest import (
    CORRECTION_S,
    INTERVAL_S,
    apply_stack,
    queue_url,
    set_sqs_attr,
    sqs_attr,
    wait_until,
)


def test_controller_console_edit_corrected_in_enforce_journaled_in_observe_and_paused_untouched(
    controllers, aws  # type: ignore[no-untyped-def]
) -> None:
    assert apply_stack() == 0
    ctl = controllers("solo")
    wait_until(ctl.cycles, 60, "the first cycle")
    assert ctl.proxy.resource_writes() == []  # a no-op cycle writes nothing
    ctl.proxy.clear()
    edited_at = time.monotonic()
    for name in ("op-enforced", "op-observed", "op-paused"):
        set_sqs_attr(name, "VisibilityTimeout", "99")
    wait_until(lambda: sqs_attr("op-enforced", "VisibilityTimeout") == "60",
               CORRECTION_S - (time.monotonic() - edited_at),
               f"the console edit of op-enforced to be corrected within {CORRECTION_S:.1f}s of the edit")
    corrected_after = time.monotonic() - edited_at
    # Observe: the drift is journaled with desired and live values, never written.
    observed = wait_until(
        lambda: [r for r in ctl.records() if r.resource == "Queue/op-observed" and "drift" in r.verdicts],
        INTERVAL_S + 15, "the observed drift in the journal")
    change = next(c for c in observed[-1].changes if c.field == "visibilityTimeout")
    assert (change.desired, change.live_before, observed[-1].action) == (60, 99, "drifted")
    assert "observed" in observed[-1].verdicts
    corrected = [r for r in ctl.records() if r.resource == "Queue/op-enforced" and "corrected" in r.verdicts]
    assert corrected and corrected[-1].changes[0].live_after == 60 and corrected[-1].fencing is not None
    assert sqs_attr("op-observed", "VisibilityTimeout") == "99"
    assert sqs_attr("op-paused", "VisibilityTimeout") == "99"
    paused_url = queue_url("op-paused")
    touched = [r for r in ctl.proxy.resource_writes() if "op-paused" in r.body or paused_url in r.body]
    assert touched == [], touched
    writes = ctl.proxy.resource_writes()
    assert writes and all("op-enforced" in w.body for w in writes), [(w.operation, w.body[:80]) for w in writes]
    print(f"console edit corrected after {corrected_after:.1f}s (interval {INTERVAL_S}s)")

    ctl.signal(signal.SIGTERM)
    assert ctl.wait_exit(60) == 0, ctl.output()
    lease = client("dynamodb").get_item(TableName=LEASE_TABLE, Key={"lockId": {"S": "huntaze-local"}})["Item"]
    assert "holder" not in lease and float(lease["expiresAt"]["N"]) == 0, lease  # released, not left to expire
    assert [r.action for r in ctl.records() if r.type == "lease"][-1] == "released"


def test_controller_observe_mode_journals_drift_and_writes_nothing(controllers, aws) -> None:  # type: ignore[no-untyped-def]
    assert apply_stack() == 0
    for name in ("op-enforced", "op-other"):
        set_sqs_attr(name, "VisibilityTimeout", "5")
    ctl = controllers("watcher", "--mode", "observe")
    drifted = wait_until(
        lambda: {r.resource for r in ctl.records() if "drift" in r.verdicts} >= {"Queue/op-enforced"}
        and ctl.cycles(), 60, "a cycle journaling the drift")
    assert drifted
    assert ctl.proxy.resource_writes() == []
    assert sqs_attr("op-enforced", "VisibilityTimeout") == "5"
    summary = ctl.cycles()[-1]
    assert summary.counts["written"] == 0 and summary.counts["drifted"] >= 1
