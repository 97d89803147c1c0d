"""The `up --demo` step that shows the controller service at work: a console edit of one live field, corrected.

Not a command (leading underscore); called by `controller.commands.up`. It changes one attribute of a live
resource directly with boto3, as someone in the AWS console would (the dead-letter queue's visibility timeout:
harmless to the jobs the demo sends), then waits until the running controller has put it back, and finds the
controller's journal record of the correction in its log group (``/huntaze/<env>/controller-journal``), so what
is printed is what the controller says it did: field, desired, live before and after, cycle, fencing number.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from common.aws import client
from controller.journal import JournalRecord, read_log_group_records

DEMO_QUEUE = "huntaze-rate-limiter-dlq"
ATTRIBUTE, FIELD = "VisibilityTimeout", "visibilityTimeout"
# The journal is flushed at the end of the cycle that corrected the value: allow a slow cycle on a busy machine.
RECORD_WAIT_S = 60.0


@dataclass(frozen=True)
class ConsoleEdit:
    queue: str
    url: str
    before: str
    edited_to: str
    at: datetime
    started: float  # time.monotonic() of the edit

    def describe(self) -> str:
        return f"Queue {self.queue} {ATTRIBUTE} {self.before} → {self.edited_to}"


@dataclass(frozen=True)
class Correction:
    edit: ConsoleEdit
    value: str
    seconds: float
    record: JournalRecord | None  # the controller's journal record of the correction (None: not found in time)

    def describe(self) -> str:
        text = (f"the controller corrected Queue {self.edit.queue} {ATTRIBUTE}: {self.edit.edited_to} → {self.value}, "
                f"{self.seconds:.0f} s after the edit")
        if self.record is not None:
            text += (f" (journal: {self.record.resource} {self.record.action}, verdicts "
                     f"{', '.join(self.record.verdicts)}, cycle {self.record.cycle_id}, fencing {self.record.fencing})")
        return text


def make_edit(queue: str = DEMO_QUEUE) -> ConsoleEdit:
    """Change the queue's visibility timeout to another value, straight through the SQS API."""
    sqs = client("sqs")
    url = str(sqs.get_queue_url(QueueName=queue)["QueueUrl"])
    before = _value(url)
    edited = str(int(before) + 67)
    at = datetime.now(UTC)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={ATTRIBUTE: edited})
    return ConsoleEdit(queue=queue, url=url, before=before, edited_to=edited, at=at, started=time.monotonic())


def wait_for_correction(
    edit: ConsoleEdit, journal_group: str, timeout_s: float, poll_s: float = 1.0
) -> Correction | None:
    """Until the live value differs from the edit (bounded by ``timeout_s`` from the edit), then the journal
    record of that correction (bounded by `RECORD_WAIT_S`). None if the value was never put back."""
    deadline = edit.started + timeout_s
    value = _value(edit.url)
    while value == edit.edited_to:
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll_s)
        value = _value(edit.url)
    seconds = time.monotonic() - edit.started
    record_deadline = time.monotonic() + RECORD_WAIT_S
    record = _record(edit, journal_group)
    while record is None and time.monotonic() < record_deadline:
        time.sleep(poll_s)
        record = _record(edit, journal_group)
    return Correction(edit=edit, value=value, seconds=seconds, record=record)


def _value(url: str) -> str:
    attributes = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[ATTRIBUTE])["Attributes"]
    return str(attributes[ATTRIBUTE])


def _record(edit: ConsoleEdit, journal_group: str) -> JournalRecord | None:
    try:
        records = read_log_group_records(client("logs"), journal_group, edit.at - timedelta(seconds=5))
    except Exception:  # the group appears with the controller's first cycle: ask again at the next poll
        return None
    for record in records:
        edited = [c for c in record.changes if c.field == FIELD and str(c.live_before) == edit.edited_to]
        if record.type == "resource" and "corrected" in record.verdicts and edited:
            return record
    return None
