"""The `up --demo` console-edit step (controller/commands/_console_edit.py) against a real controller process:
the edit made through boto3 is put back by the controller, and the step finds the controller's own journal record
of it in the journal log group. Time-scaled: the controller runs at a 4 s interval instead of 60 s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from controller.commands import _console_edit
from controller.commands.controller import journal_group
from tests.operator.conftest import INTERVAL_S, REPO, apply_stack, wait_until


def _specs(target: Path) -> Path:
    """The demo's queue and the journal log group exactly as manifests/ declares them."""
    wanted = {("Queue", _console_edit.DEMO_QUEUE), ("LogGroup", "controller-journal")}
    docs = [d for f in sorted((REPO / "manifests").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())
            if isinstance(d, dict) and (d.get("kind"), d.get("metadata", {}).get("name")) in wanted]
    assert len(docs) == len(wanted)
    target.mkdir()
    (target / "stack.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return target


def test_console_edit_step_is_corrected_by_the_running_controller_with_its_journal_record(
    controllers, aws, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    ctl = controllers("demo", specs=_specs(tmp_path / "specs"))
    wait_until(ctl.cycles, 90, "the controller's first cycle")
    edit = _console_edit.make_edit()
    assert edit.edited_to != edit.before

    correction = _console_edit.wait_for_correction(edit, journal_group("local"), timeout_s=INTERVAL_S * 1.1 + 60,
                                                   poll_s=0.3)

    assert correction is not None, ctl.output()
    assert correction.value == edit.before
    record: Any = correction.record
    assert record is not None, "the correction's journal record was not found in the log group"
    assert record.resource == f"Queue/{_console_edit.DEMO_QUEUE}" and "corrected" in record.verdicts
    (change,) = [c for c in record.changes if c.field == _console_edit.FIELD]
    assert (str(change.live_before), str(change.live_after)) == (edit.edited_to, edit.before)
    text = correction.describe()
    assert f"{edit.edited_to} → {edit.before}" in text and record.cycle_id in text


def test_console_edit_step_reports_none_when_no_controller_corrects_it(aws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert apply_stack(_specs(tmp_path / "specs")) == 0
    edit = _console_edit.make_edit()
    assert _console_edit.wait_for_correction(edit, journal_group("local"), timeout_s=2, poll_s=0.2) is None
