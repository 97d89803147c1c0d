"""Dead-letter triage and redrive for both DLQs (called by `huntazectl dlq list|show|redrive`).

Reading never loses or hides a message. Messages are received with a short hold (``HOLD_S``: visibility
timeout), kept in flight while the whole queue is read (so none is read twice), and every message not redriven is
given back (visibility 0) in a ``finally``, even when the command fails or is interrupted; a crash gives them back
when the hold ends. DLQs have no redrive policy of their own, so the receives cost nothing. A FIFO DLQ returns at
most 10 messages of one group per receive and nothing more of that group while they are held: what could not be
read is reported (``unread``), never silently left out.

A redrive sends a message back to the queue whose RedrivePolicy names the DLQ, with the same body and the same
identity (`common.identity`: the body's correlation id, else ``origin_message_id``, which is kept, or set from
the DLQ message's own id when SQS moved the original there): the gate's forwarded marks and the scraper's
idempotency records are keyed by it, so a job already done is not done again. For a FIFO target the
MessageDeduplicationId is derived from the DLQ message (a fresh one: SQS would silently drop a redrive within 5
minutes of the original send if it reused the job's), the group is the job's creator. The message is deleted from
the DLQ only after the send succeeded. Jobs that are still invalid under today's contract are refused and
counted with their field errors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from common.aws import client
from common.contract import ContractError, Job, parse_job
from common.identity import message_identity
from controller.oncall.queues import DeadLetterPair

HOLD_S = 60
REASON_ATTRS = ("error", "error_type")
DROPPED_ON_REDRIVE = ("error", "error_type", "receive_count")
MAX_ATTRIBUTE_CHARS = 1024


_PATTERN = re.compile(r"should match pattern .*?(?=; [A-Za-z_.\d]+: |$)")


def short_reason(error: str, limit: int = 160) -> str:
    """A reason to group and show: regex patterns quoted by pydantic are elided, the rest kept whole."""
    text = _PATTERN.sub("should match its pattern", error)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _attr(message: dict[str, Any], name: str) -> str | None:
    value = message.get("MessageAttributes", {}).get(name)
    return str(value["StringValue"]) if value and "StringValue" in value else None


def _ms_to_iso(ms: str | int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, UTC).isoformat(timespec="seconds")


@dataclass
class DeadLetter:
    """One DLQ message, parsed for triage."""

    pair: DeadLetterPair
    raw: dict[str, Any]
    job: Job | None = None
    invalid: ContractError | None = None

    @classmethod
    def of(cls, pair: DeadLetterPair, raw: dict[str, Any]) -> DeadLetter:
        letter = cls(pair, raw)
        try:
            letter.job = parse_job(raw.get("Body", ""))
        except ContractError as exc:
            letter.invalid = exc
        return letter

    @property
    def message_id(self) -> str:
        return str(self.raw["MessageId"])

    @property
    def origin_message_id(self) -> str:
        return _attr(self.raw, "origin_message_id") or self.message_id

    @property
    def identity(self) -> str | None:
        return message_identity(self.job, self.origin_message_id) if self.job else None

    @property
    def error(self) -> str | None:
        return _attr(self.raw, "error")

    @property
    def error_type(self) -> str:
        """The reason class: the ``error_type`` attribute; a gate rejection (``error`` only) is validation."""
        explicit = _attr(self.raw, "error_type")
        if explicit:
            return explicit
        if self.error:
            return "validation"
        return "unexplained"  # moved by SQS after maxReceiveCount: no program gave a reason

    @property
    def reason(self) -> str:
        if self.error:
            return short_reason(self.error)
        receives = self.raw.get("Attributes", {}).get("ApproximateReceiveCount", "?")
        return f"no error attribute: moved by SQS redrive after {receives} receives"

    def _body_field(self, name: str) -> str:
        if self.job is not None:
            return str(getattr(self.job, name))
        try:
            raw = json.loads(self.raw.get("Body", ""))
        except ValueError:
            return "?"
        value = raw.get(name) if isinstance(raw, dict) else None
        return str(value) if value else "?"

    @property
    def creator(self) -> str:
        return self._body_field("creator_id")

    @property
    def action(self) -> str:
        return self._body_field("action")

    @property
    def dead_lettered_at(self) -> str | None:
        return _ms_to_iso(self.raw.get("Attributes", {}).get("SentTimestamp"))

    def history(self) -> dict[str, Any]:
        attrs = self.raw.get("Attributes", {})
        return {
            "identity": self.identity,
            "first_seen": _attr(self.raw, "first_seen") or self.dead_lettered_at,
            "gate_deferrals": int(_attr(self.raw, "gate_deferrals") or 0),
            "receives_before_dead_letter": int(_attr(self.raw, "receive_count") or 0) or None,
            "dead_lettered_at": self.dead_lettered_at,
            "receives_in_dlq": int(attrs.get("ApproximateReceiveCount", 0)),
            "redrives": int(_attr(self.raw, "redrive_count") or 0),
        }

    def view(self) -> dict[str, Any]:
        return {
            "id": self.message_id, "dlq": self.pair.dlq.name, "redrive_to": self.pair.source.name,
            "reason": self.error_type, "error": self.error, "creator": self.creator, "action": self.action,
            "valid_today": self.invalid is None,
            "contract_errors": self.invalid.summary() if self.invalid else None,
            "attributes": {k: v.get("StringValue") for k, v in self.raw.get("MessageAttributes", {}).items()},
            "sqs": dict(self.raw.get("Attributes", {})),
            "history": self.history(), "body": self.raw.get("Body"),
        }


@dataclass
class Reading:
    """Messages read from DLQs and still held; `release` gives back every one not settled."""

    letters: list[DeadLetter] = field(default_factory=list)
    unread: dict[str, int] = field(default_factory=dict)  # DLQ name -> messages it holds that could not be read
    settled: set[str] = field(default_factory=set)  # receipt handles deleted after a redrive

    def release(self) -> int:
        sqs = client("sqs")
        pending: dict[str, list[str]] = {}
        for letter in self.letters:
            handle = letter.raw["ReceiptHandle"]
            if handle not in self.settled:
                pending.setdefault(letter.pair.dlq.url, []).append(handle)
        given = 0
        for url, handles in pending.items():
            for start in range(0, len(handles), 10):
                chunk = handles[start:start + 10]
                entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)]
                result = sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
                given += len(result.get("Successful", []))
        self.settled.update(h for handles in pending.values() for h in handles)
        return given


def _receive_all(pair: DeadLetterPair, reading: Reading, hold_s: int) -> None:
    sqs = client("sqs")
    seen: set[str] = set()
    while True:
        got = sqs.receive_message(
            QueueUrl=pair.dlq.url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=hold_s,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in got if m["MessageId"] not in seen]
        for message in got:
            if message["MessageId"] in seen:  # a hold ran out mid-read (a huge queue): give the copy back
                sqs.change_message_visibility(QueueUrl=pair.dlq.url, ReceiptHandle=message["ReceiptHandle"],
                                              VisibilityTimeout=0)
        if not fresh:
            break
        seen.update(m["MessageId"] for m in fresh)
        reading.letters.extend(DeadLetter.of(pair, m) for m in fresh)
    attrs = sqs.get_queue_attributes(QueueUrl=pair.dlq.url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    left = int(attrs.get("ApproximateNumberOfMessages", 0)) + int(attrs.get("ApproximateNumberOfMessagesDelayed", 0))
    if left:
        reading.unread[pair.dlq.name] = left


@contextlib.contextmanager
def read(pairs: list[DeadLetterPair], hold_s: int = HOLD_S) -> Iterator[Reading]:
    """Hold every readable message of the DLQs for the block; give back every one not settled, always."""
    reading = Reading()
    try:
        for pair in pairs:
            _receive_all(pair, reading, hold_s)
        yield reading
    finally:
        reading.release()


def groups(letters: list[DeadLetter]) -> list[dict[str, Any]]:
    """Messages grouped by (reason class, reason, creator, action), largest group first."""
    table: dict[tuple[str, str, str, str, str], list[DeadLetter]] = {}
    for letter in letters:
        key = (letter.pair.dlq.name, letter.error_type, letter.reason, letter.creator, letter.action)
        table.setdefault(key, []).append(letter)
    out = []
    for (dlq, error_type, reason, creator, action), members in table.items():
        times = sorted(t for t in (m.dead_lettered_at for m in members) if t)
        out.append({
            "dlq": dlq, "error_type": error_type, "reason": reason, "creator": creator, "action": action,
            "count": len(members), "oldest": times[0] if times else None, "newest": times[-1] if times else None,
            "valid_today": sum(1 for m in members if m.invalid is None),
        })
    return sorted(out, key=lambda g: (-g["count"], g["dlq"], g["reason"]))


def classes(letters: list[DeadLetter]) -> list[dict[str, Any]]:
    """Messages per DLQ and failure class (``error_type``: the scraper's error class, ``validation`` for the gate's
    rejections, ``unexplained`` for SQS's own moves), with their oldest and newest, how many creators, the most
    common reason, and the redrive command for the class. Largest class first."""
    table: dict[tuple[str, str], list[DeadLetter]] = {}
    for letter in letters:
        table.setdefault((letter.pair.dlq.name, letter.error_type), []).append(letter)
    out = []
    for (dlq, error_type), members in table.items():
        times = sorted(t for t in (m.dead_lettered_at for m in members) if t)
        reason, _ = Counter(m.reason for m in members).most_common(1)[0]
        out.append({
            "dlq": dlq, "error_type": error_type, "count": len(members),
            "creators": len({m.creator for m in members}), "top_reason": reason,
            "oldest": times[0] if times else None, "newest": times[-1] if times else None,
            "valid_today": sum(1 for m in members if m.invalid is None),
        })
    return sorted(out, key=lambda c: (-c["count"], c["dlq"], c["error_type"]))


@dataclass(frozen=True)
class Selection:
    reason: str | None = None  # matches error_type exactly or a substring of the error text
    creator: str | None = None
    action: str | None = None
    limit: int | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.reason and not (self.reason == letter.error_type or self.reason in (letter.error or "")):
            return False
        if self.creator and self.creator != letter.creator:
            return False
        return not (self.action and self.action != letter.action)


@dataclass
class RedriveReport:
    redriven: list[str] = field(default_factory=list)  # DLQ message ids sent back
    skipped: Counter[str] = field(default_factory=Counter)  # why, e.g. "still invalid: creator_id: ..."
    failed: dict[str, str] = field(default_factory=dict)  # message id -> send error
    targets: Counter[str] = field(default_factory=Counter)
    unread: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run, "redriven": len(self.redriven), "to": dict(self.targets),
            "skipped": sum(self.skipped.values()), "skipped_by_reason": dict(self.skipped.most_common()),
            "failed": self.failed, "unread": self.unread, "message_ids": self.redriven,
        }


def redrive_entry(letter: DeadLetter) -> dict[str, Any]:
    """The SendMessage arguments that put `letter` back on its source queue with its identity intact."""
    assert letter.job is not None
    attrs = {k: v for k, v in letter.raw.get("MessageAttributes", {}).items() if k not in DROPPED_ON_REDRIVE}
    attrs["origin_message_id"] = {"DataType": "String", "StringValue": letter.origin_message_id}
    attrs["redrive_count"] = {"DataType": "Number",
                              "StringValue": str(int(_attr(letter.raw, "redrive_count") or 0) + 1)}
    attrs["redriven_from"] = {"DataType": "String", "StringValue": letter.message_id[:MAX_ATTRIBUTE_CHARS]}
    entry: dict[str, Any] = {"QueueUrl": letter.pair.source.url, "MessageBody": letter.raw["Body"],
                             "MessageAttributes": attrs}
    if letter.pair.source.fifo:
        entry["MessageGroupId"] = letter.job.group_id
        entry["MessageDeduplicationId"] = hashlib.sha256(f"redrive:{letter.message_id}".encode()).hexdigest()
    return entry


def redrive(pairs: list[DeadLetterPair], selection: Selection, *, dry_run: bool = False,
            max_rounds: int = 50) -> RedriveReport:
    """Redrive the selected messages. A FIFO DLQ holding more than 10 messages of a group is read again after
    each round that deleted some (the group's next messages become readable), until a round redrives nothing."""
    report = RedriveReport(dry_run=dry_run)
    skipped: dict[str, str] = {}
    for _ in range(max_rounds):
        before = len(report.redriven)
        report.unread = _redrive_round(pairs, selection, report, skipped)
        if dry_run or len(report.redriven) == before or not report.unread:
            break
    report.skipped = Counter(skipped.values())
    return report


def _redrive_round(pairs: list[DeadLetterPair], selection: Selection, report: RedriveReport,
                   skipped: dict[str, str]) -> dict[str, int]:
    sqs = client("sqs")
    with read(pairs) as reading:
        for letter in (letter for letter in reading.letters if selection.matches(letter)):
            if letter.message_id in report.redriven or letter.message_id in report.failed:
                continue
            if selection.limit is not None and len(report.redriven) >= selection.limit:
                skipped[letter.message_id] = "over --limit"
                continue
            if letter.invalid is not None:
                fields = ", ".join(sorted({p.field for p in letter.invalid.problems}))
                skipped[letter.message_id] = f"still invalid under today's contract ({fields})"
                continue
            skipped.pop(letter.message_id, None)
            if not report.dry_run:
                try:
                    sqs.send_message(**redrive_entry(letter))
                except Exception as exc:  # reported per message; the message stays in the DLQ (given back)
                    report.failed[letter.message_id] = f"{type(exc).__name__}: {exc}"
                    continue
                sqs.delete_message(QueueUrl=letter.pair.dlq.url, ReceiptHandle=letter.raw["ReceiptHandle"])
                reading.settled.add(letter.raw["ReceiptHandle"])
            report.targets[letter.pair.source.name] += 1
            report.redriven.append(letter.message_id)
        return dict(reading.unread)
