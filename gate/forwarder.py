"""SQS sends of the gate (called by `gate.handler`): forward to the FIFO queue, defer a copy, dead-letter.

Every send is a `SendMessageBatch` of at most 10 entries and 256 KiB; entries that a partially failed batch
rejects are retried one by one with `SendMessage`. What could not be sent is returned as the ingress message ids
it was meant to settle, so the handler reports exactly those as batch item failures: the original stays on the
ingress queue and nothing is lost.

The three message shapes (contracts other programs read):

- forwarded (FIFO): body unchanged; ``MessageGroupId`` = creator (else user, else "default");
  ``MessageDeduplicationId`` = `common.identity.deduplication_id` of the job's identity; attributes
  ``rate_limit_timestamp`` (ISO 8601), ``tokens_remaining`` (Number), ``rate_limiter_version``,
  ``origin_message_id``, ``gate_deferrals`` (Number).
- deferred copy (ingress, ``DelaySeconds`` <= 900): ``origin_message_id``, ``gate_deferrals``, ``first_seen``,
  ``reserved_slot`` (ISO 8601, when a slot is reserved) and ``defer_reason``.
- dead letter (ingress DLQ): ``error`` (`ContractError.summary()`, field-level) and ``origin_message_id``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from common.contract import Job
from common.identity import FIRST_SEEN_ATTR, deduplication_id
from gate.records import (
    DEFER_REASON_ATTR,
    DEFERRALS_ATTR,
    ERROR_ATTR,
    ORIGIN_ATTR,
    RESERVED_SLOT_ATTR,
    Inbound,
)
from gate.telemetry import logger as log

MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 262_144
MAX_DELAY_S = 900
_MAX_ATTRIBUTE_CHARS = 1024



@dataclass(frozen=True)
class Outgoing:
    """One message to send, and the ingress record whose fate depends on it."""

    record_id: str
    body: str
    attributes: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    group_id: str | None = None
    dedup_id: str | None = None
    delay_s: int = 0
    identity: str | None = None  # set on forwarded jobs: marked in Redis once sent

    def entry(self, entry_id: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Id": entry_id,
            "MessageBody": self.body,
            "MessageAttributes": {
                name: {"DataType": kind, "StringValue": value} for name, (kind, value) in self.attributes.items()
            },
        }
        if self.group_id is not None:
            entry["MessageGroupId"] = self.group_id
        if self.dedup_id is not None:
            entry["MessageDeduplicationId"] = self.dedup_id
        if self.delay_s:
            entry["DelaySeconds"] = self.delay_s
        return entry

    @property
    def size(self) -> int:
        attrs = sum(len(n) + len(k) + len(v.encode()) for n, (k, v) in self.attributes.items())
        return len(self.body.encode()) + attrs


def forwarded(inbound: Inbound, job: Job, identity: str, *, at: datetime, remaining: int, version: str) -> Outgoing:
    return Outgoing(
        record_id=inbound.message_id,
        body=inbound.body,
        attributes={
            "rate_limit_timestamp": ("String", at.isoformat(timespec="milliseconds")),
            "tokens_remaining": ("Number", str(remaining)),
            "rate_limiter_version": ("String", version),
            ORIGIN_ATTR: ("String", inbound.origin_message_id),
            DEFERRALS_ATTR: ("Number", str(inbound.deferrals)),
        },
        group_id=job.group_id,
        dedup_id=deduplication_id(identity),
        identity=identity,
    )


def deferred_copy(inbound: Inbound, *, delay_s: int, reason: str, reserved_slot: datetime | None) -> Outgoing:
    attributes = {
        ORIGIN_ATTR: ("String", inbound.origin_message_id),
        DEFERRALS_ATTR: ("Number", str(inbound.deferrals + 1)),
        FIRST_SEEN_ATTR: ("String", inbound.first_seen),
        DEFER_REASON_ATTR: ("String", reason),
    }
    if reserved_slot is not None:
        attributes[RESERVED_SLOT_ATTR] = ("String", reserved_slot.isoformat(timespec="milliseconds"))
    return Outgoing(
        record_id=inbound.message_id,
        body=inbound.body,
        attributes=attributes,
        delay_s=max(0, min(MAX_DELAY_S, delay_s)),
    )


def dead_letter(inbound: Inbound) -> Outgoing:
    summary = inbound.error.summary() if inbound.error is not None else "invalid"
    if len(summary) > _MAX_ATTRIBUTE_CHARS:
        summary = summary[: _MAX_ATTRIBUTE_CHARS - 1] + "…"
    return Outgoing(
        record_id=inbound.message_id,
        body=inbound.body or "(empty)",
        attributes={ERROR_ATTR: ("String", summary), ORIGIN_ATTR: ("String", inbound.origin_message_id)},
    )


def _chunks(messages: Sequence[Outgoing]) -> Iterator[list[Outgoing]]:
    chunk: list[Outgoing] = []
    size = 0
    for message in messages:
        if chunk and (len(chunk) == MAX_BATCH_ENTRIES or size + message.size > MAX_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(message)
        size += message.size
    if chunk:
        yield chunk


class Sender:
    """Sends `Outgoing` messages with an SQS client (`common.aws.client("sqs")`)."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs

    def send(self, queue_url: str, messages: Sequence[Outgoing]) -> set[str]:
        """Send all; return the record ids whose message could not be sent."""
        failed: set[str] = set()
        for chunk in _chunks(messages):
            failed |= self._send_chunk(queue_url, chunk)
        return failed

    def _send_chunk(self, queue_url: str, chunk: list[Outgoing]) -> set[str]:
        try:
            response = self.sqs.send_message_batch(
                QueueUrl=queue_url, Entries=[m.entry(str(i)) for i, m in enumerate(chunk)]
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("SendMessageBatch failed for %d entries: %s", len(chunk), _describe(exc))
            return {m.record_id for m in chunk}
        failed: set[str] = set()
        for entry in response.get("Failed", []):
            message = chunk[int(entry["Id"])]
            log.warning("batch entry rejected (%s: %s); sending it alone", entry.get("Code"), entry.get("Message"))
            if not self._send_one(queue_url, message):
                failed.add(message.record_id)
        return failed

    def _send_one(self, queue_url: str, message: Outgoing) -> bool:
        entry = message.entry("0")
        del entry["Id"]
        try:
            self.sqs.send_message(QueueUrl=queue_url, **entry)
        except (ClientError, BotoCoreError) as exc:
            log.warning("SendMessage failed: %s", _describe(exc))
            return False
        return True


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code')}: {error.get('Message')}"
    return f"{type(exc).__name__}: {exc}"
