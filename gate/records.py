"""Turn the records of a Lambda SQS event into `Inbound` jobs (called by `gate.handler`).

A record is valid (a `Job` plus its stable identity) or invalid (a `ContractError`: bad JSON, oversize, a field
breaking the contract). Gate-made attributes of a deferred copy (`origin_message_id`, `gate_deferrals`,
`first_seen`) are read back so a job keeps one identity and one history across deferrals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from common.contract import ContractError, FieldProblem, Job, parse_job
from common.identity import FIRST_SEEN_ATTR, message_identity

ORIGIN_ATTR = "origin_message_id"
DEFERRALS_ATTR = "gate_deferrals"
RESERVED_SLOT_ATTR = "reserved_slot"
DEFER_REASON_ATTR = "defer_reason"
ERROR_ATTR = "error"


@dataclass(frozen=True)
class Inbound:
    """One SQS record of the event, parsed."""

    message_id: str
    body: str
    origin_message_id: str
    deferrals: int
    first_seen: str
    job: Job | None = None
    error: ContractError | None = None

    @property
    def identity(self) -> str:
        if self.job is None:
            raise ValueError("an invalid record has no identity")
        return message_identity(self.job, self.origin_message_id)


def _attribute(record: Mapping[str, Any], name: str) -> str | None:
    attrs = record.get("messageAttributes") or {}
    value = attrs.get(name) if isinstance(attrs, Mapping) else None
    if isinstance(value, Mapping):
        text = value.get("stringValue")
        return text if isinstance(text, str) and text else None
    return None


def _deferrals(record: Mapping[str, Any]) -> int:
    text = _attribute(record, DEFERRALS_ATTR)
    try:
        return max(0, int(text)) if text is not None else 0
    except ValueError:
        return 0


def _first_seen(record: Mapping[str, Any]) -> str:
    carried = _attribute(record, FIRST_SEEN_ATTR)
    if carried is not None:
        return carried
    sent = (record.get("attributes") or {}).get("SentTimestamp")
    try:
        moment = datetime.fromtimestamp(int(sent) / 1000, UTC) if sent is not None else datetime.now(UTC)
    except (TypeError, ValueError):
        moment = datetime.now(UTC)
    return moment.isoformat(timespec="milliseconds")


def parse_record(record: Mapping[str, Any]) -> Inbound:
    """Parse one event record. Raises KeyError only when the record has no messageId (not an SQS record)."""
    message_id = str(record["messageId"])
    body = record.get("body")
    base = Inbound(
        message_id=message_id,
        body=body if isinstance(body, str) else "",
        origin_message_id=_attribute(record, ORIGIN_ATTR) or message_id,
        deferrals=_deferrals(record),
        first_seen=_first_seen(record),
    )
    if not isinstance(body, str):
        problem = FieldProblem(field="body", message="record has no text body", type="missing")
        return replace(base, error=ContractError([problem]))
    try:
        return replace(base, job=parse_job(body))
    except ContractError as exc:
        return replace(base, error=exc)
