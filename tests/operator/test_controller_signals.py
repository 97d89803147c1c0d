"""The controller's signals and spec watch (real processes): a changed spec file is reconciled within seconds
(not at the next 60 s interval), SIGHUP reloads too, and a second SIGTERM exits at once with every journal line
whole."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from controller.journal import JournalRecord
from tests.operator.aws_proxy import Fault
from tests.operator.conftest import apply_stack, sqs_attr, wait_until


def _edit_spec(specs: Path, old: str, new: str) -> None:
    path = specs / "stack.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("trigger", ["watch", "sighup"])
def test_controller_changed_spec_is_reconciled_within_seconds(
    controllers, aws, stack_copy: Path, trigger: str  # type: ignore[no-untyped-def]
) -> None:
    assert apply_stack(stack_copy) == 0
    watch_poll = "0.5s" if trigger == "watch" else "1h"
    ctl = controllers(f"reload-{trigger}", "--watch-poll", watch_poll, specs=stack_copy, interval_s=600)
    wait_until(ctl.cycles, 60, "the first cycle")
    _edit_spec(stack_copy, "visibilityTimeout: 45", "visibilityTimeout: 50")
    if trigger == "sighup":
        ctl.signal(signal.SIGHUP)
    wait_until(lambda: sqs_attr("op-other", "VisibilityTimeout") == "50", 30,
               "the changed spec to be applied long before the 600 s interval")
    assert any(r.type == "spec" and r.action == "reloaded" and "Queue/op-other" in r.message for r in ctl.records())


def test_controller_bad_spec_on_reload_keeps_running_the_previous_specs(controllers, aws, stack_copy: Path) -> None:  # type: ignore[no-untyped-def]
    assert apply_stack(stack_copy) == 0
    ctl = controllers("bad-reload", specs=stack_copy, interval_s=600)
    wait_until(ctl.cycles, 60, "the first cycle")
    _edit_spec(stack_copy, "visibilityTimeout: 45", "visibilityTimeout: many")
    rejected = wait_until(lambda: [r for r in ctl.records() if r.type == "spec" and r.action == "invalid"], 30,
                          "the invalid spec to be journaled")
    assert "stack.yaml" in (rejected[0].error or "") and ctl.proc.poll() is None


def test_controller_second_sigterm_exits_at_once_with_whole_journal_lines(controllers, aws) -> None:  # type: ignore[no-untyped-def]
    assert apply_stack() == 0
    ctl = controllers("stubborn")
    wait_until(ctl.cycles, 60, "the first cycle")
    release = threading.Event()
    hold = Fault("sqs", "", "op-other", operations=("GetQueueAttributes",), times=1, hold=release)
    ctl.proxy.faults.append(hold)
    try:
        wait_until(lambda: hold.hits == 1, 30, "a cycle stuck on a read")
        ctl.signal(signal.SIGTERM)
        wait_until(lambda: "finishing the resources in progress" in ctl.output(), 30, "the first SIGTERM")
        ctl.signal(signal.SIGTERM)
        code = ctl.wait_exit(30)
    finally:
        release.set()
    assert code == 143, ctl.output()
    assert "second signal: exiting now" in ctl.output()
    lines = ctl.journal.read_text().splitlines()
    assert lines and all(JournalRecord.model_validate_json(line) for line in lines)
