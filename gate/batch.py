"""One invocation's work: decide every record, then forward, defer or dead-letter it (called by `gate.handler`).

Outcome per record (ARCHITECTURE.md decisions 1, 3, 4 and 5):

- invalid (bad JSON, oversize, contract): copy to the ingress DLQ with an ``error`` attribute; done once queued.
- admitted: forward to the FIFO queue; done once sent, then marked forwarded in Redis.
- throttled or breaker open: re-send a copy to the ingress queue with ``DelaySeconds`` = the wait (its reserved
  slot, at most 900 s: a longer wait hops again); done once the copy is queued. The copy is a new message, so
  the receive count that drives the DLQ never grows.
- already forwarded (a redelivery): done, nothing sent.
- Redis unreachable or slow: fail closed, defer a copy with exponential backoff and jitter (never the DLQ);
  with the dangerous fail-open switch, forward unlimited instead.
- any send that fails: reported as a batch item failure, so SQS redelivers the original.

Records sharing one identity in a batch (the same job twice) are decided once and share the first one's fate.
Powertools' BatchProcessor is not used: it calls a handler per record and learns of failures by exceptions,
while the gate decides the whole batch in one Redis round trip and sends in batches of ten.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from common import aws
from gate import telemetry
from gate.errors import LimiterUnavailable
from gate.forwarder import MAX_DELAY_S, Outgoing, Sender, dead_letter, deferred_copy, forwarded
from gate.limiter import SHORT_WAITS, Decision, Limiter, LimitRequest, Status
from gate.records import Inbound, parse_record
from gate.settings import GateSettings
from gate.telemetry import logger

# SQS calls must fail within the Lambda's timeout (30 s) rather than retry past it: a failed send is then
# reported as a batch item failure and retried by SQS.
SQS_READ_TIMEOUT_S = 5.0
SQS_MAX_ATTEMPTS = 3
# A wait this short (an earlier job of the same creator being sent, often by this very invocation) is always
# spent here, even with holding off: a delayed copy would cost a receive and at least a second.
INLINE_WAIT_S = 0.1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RESERVED = frozenset({Status.DEFERRED_RESERVED, Status.DEFERRED_EARLY, Status.WAITING})
# The reason each decision gives in the seed's log line (and as the deferred copy's ``defer_reason``).
_REASONS = {
    Status.ADMITTED: "admitted", Status.ADMITTED_RESERVED: "reserved_slot",
    Status.DEFERRED_RESERVED: "rate_limited", Status.DEFERRED_EARLY: "rate_limited",
    Status.DEFERRED_UNRESERVED: "rate_limited", Status.WAITING: "rate_limited", Status.BREAKER_OPEN: "breaker_open",
    Status.DUPLICATE: "duplicate", Status.IN_FLIGHT: "duplicate_in_flight",
}


class Gate:
    """The gate with its collaborators; built once per cold start and reused by every invocation."""

    def __init__(self, settings: GateSettings, limiter: Limiter, sender: Sender, rng: random.Random | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.limiter = limiter
        self.sender = sender
        self.rng = rng or random.Random()
        self.sleep = sleep

    @classmethod
    def from_settings(cls, settings: GateSettings) -> Gate:
        sqs = aws.client("sqs", read_timeout_s=SQS_READ_TIMEOUT_S, max_attempts=SQS_MAX_ATTEMPTS)
        return cls(settings, Limiter.from_settings(settings), Sender(sqs))

    def process(self, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """Handle one event's records; return the message ids to report as batch item failures."""
        counts: Counter[str] = Counter()
        inbound = _parse_all(records)
        failures = self.sender.send(self.settings.ingress_dlq_url, [dead_letter(i) for i in inbound if i.job is None])
        counts[telemetry.INVALID] += sum(1 for i in inbound if i.job is None and i.message_id not in failures)
        primaries, followers = _split_duplicates([i for i in inbound if i.job is not None])
        failures |= self._admit(primaries, counts)
        failures |= {f.message_id for f, primary in followers if primary in failures}
        counts[telemetry.ERRORS] += len(failures)
        telemetry.publish(counts)
        return [i.message_id for i in inbound if i.message_id in failures]

    def _admit(self, jobs: list[Inbound], counts: Counter[str]) -> set[str]:
        """Decide, forward and defer; a short wait (a slot seconds away, a window freeing in a moment) is spent
        here, re-deciding only the waiting jobs, so it costs no receive. Bounded by the hold budget."""
        failures: set[str] = set()
        budget_end = time.monotonic() + self.settings.rate_hold_budget_s
        pending = jobs
        while pending:
            try:
                decisions = self.limiter.decide_batch([_request(i) for i in pending])
            except LimiterUnavailable as exc:
                counts[telemetry.ERRORS] += 1
                return failures | self._limiter_down(pending, exc, counts)
            to_forward, to_defer, held = self._sort(pending, decisions, budget_end, counts)
            failures |= self._defer(to_defer, counts)
            failed = self._forward(to_forward, {i.message_id: _request(i) for i in pending})
            failures |= failed
            # A creator whose job could not be forwarded: its later jobs here would wait behind that job until its
            # redelivery (decide.lua, I4); report them for redelivery with it instead of holding them.
            stuck = {i.job.creator_id for i in pending if i.message_id in failed and i.job is not None}
            failures |= {job.message_id for job, _ in held if job.job is not None and job.job.creator_id in stuck}
            held = [(job, d) for job, d in held if job.message_id not in failures]
            if not held:
                break
            self.sleep(max(0.01, min(d.retry_after_s for _, d in held)))
            pending = [job for job, _ in held]
        return failures

    def _sort(self, jobs: list[Inbound], decisions: list[Decision], budget_end: float, counts: Counter[str],
              ) -> tuple[list[Outgoing], list[Outgoing], list[tuple[Inbound, Decision]]]:
        to_forward: list[Outgoing] = []
        to_defer: list[Outgoing] = []
        held: list[tuple[Inbound, Decision]] = []
        for job, decision in zip(jobs, decisions, strict=True):
            if decision.status in SHORT_WAITS \
                    and decision.retry_after_s <= max(self.settings.rate_hold_max_s, INLINE_WAIT_S) \
                    and time.monotonic() + decision.retry_after_s <= budget_end:
                held.append((job, decision))
                continue
            self._log(job, decision)
            if decision.status is Status.DUPLICATE:
                counts[telemetry.DUPLICATE] += 1
            elif decision.allowed:
                counts[telemetry.ALLOWED] += 1
                to_forward.append(self._forwarded(job, decision))
            else:
                counts[telemetry.BREAKER if decision.status is Status.BREAKER_OPEN else telemetry.REJECTED] += 1
                to_defer.append(_deferral(job, decision))
        return to_forward, to_defer, held

    def _forwarded(self, job: Inbound, decision: Decision) -> Outgoing:
        assert job.job is not None
        moment = datetime.fromtimestamp(decision.now_us / 1e6, UTC)
        return forwarded(job, job.job, job.identity, at=moment, remaining=decision.remaining,
                         version=self.settings.rate_limiter_version)

    def _forward(self, messages: list[Outgoing], requests: Mapping[str, LimitRequest] | None = None) -> set[str]:
        """Send admitted jobs; mark the sent ones forwarded, and tell the limiter which sends failed."""
        requests = requests or {}
        failed = self.sender.send(self.settings.workflows_queue_url, messages)
        sent = {m.record_id for m in messages} - failed
        try:
            self.limiter.mark_forwarded([requests[m.record_id] for m in messages
                                         if m.record_id in sent and m.record_id in requests],
                                        self.settings.forwarded_mark_ttl_s)
            self.limiter.send_failed([requests[m.record_id] for m in messages
                                      if m.record_id in failed and m.record_id in requests])
        except LimiterUnavailable as exc:
            logger.warning("forwarded jobs not marked; FIFO deduplication still covers 5 minutes",
                           extra={"error": str(exc)})
        return failed

    def _defer(self, messages: list[Outgoing], counts: Counter[str]) -> set[str]:
        failed = self.sender.send(self.settings.ingress_queue_url, messages)
        counts[telemetry.DEFERRED] += len(messages) - len(failed)
        return failed

    def _limiter_down(self, jobs: list[Inbound], exc: LimiterUnavailable, counts: Counter[str]) -> set[str]:
        if self.settings.gate_fail_open:
            logger.error("Redis unavailable; FAIL-OPEN is on: forwarding without a limit", extra={"error": str(exc)})
            moment = datetime.now(UTC)
            return self._forward([
                forwarded(j, j.job, j.identity, at=moment, remaining=-1, version=self.settings.rate_limiter_version)
                for j in jobs if j.job is not None
            ], {j.message_id: _request(j) for j in jobs if j.job is not None})
        copies = []
        for job in jobs:
            delay = self._backoff(job.deferrals)
            telemetry.log_decision(False, delay, 0, "redis_unreachable", status="limiter_unavailable",
                                   **_fields(job))
            copies.append(deferred_copy(job, delay_s=delay, reason="limiter_unavailable", reserved_slot=None))
        logger.error("Redis unavailable; deferring the batch (fail closed)",
                     extra={"error": str(exc), "records": len(jobs)})
        return self._defer(copies, counts)

    def _backoff(self, deferrals: int) -> int:
        """Exponential in the job's deferrals, equal jitter, between 1 s and the configured maximum."""
        ceiling = min(self.settings.redis_backoff_max_s, self.settings.redis_backoff_base_s << min(deferrals, 10))
        return max(1, round(ceiling / 2 + self.rng.uniform(0, ceiling / 2)))

    def _log(self, job: Inbound, decision: Decision) -> None:
        slot = decision.reserved_slot if decision.status in _RESERVED else None
        telemetry.log_decision(
            decision.allowed, decision.retry_after, decision.remaining, _REASONS[decision.status],
            status=decision.status.name.lower(),
            reserved_slot=slot.isoformat() if slot else None, **_fields(job),
        )


def _fields(job: Inbound) -> dict[str, Any]:
    assert job.job is not None
    return {"message_id": job.message_id, "origin_message_id": job.origin_message_id,
            "creator_id": job.job.creator_id, "action": job.job.action.value, "gate_deferrals": job.deferrals,
            "first_seen": job.first_seen}


def _request(job: Inbound) -> LimitRequest:
    assert job.job is not None
    return LimitRequest(job.identity, job.job.creator_id, job.job.user_id, job.job.action.value,
                        order_us=_epoch_us(job.first_seen))


def _epoch_us(moment: str) -> int:
    """The producer's send time (``first_seen``, carried across deferrals) in us; 0 if unreadable."""
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return 0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // timedelta(microseconds=1)  # exact: a float timestamp would round microseconds


def _deferral(job: Inbound, decision: Decision) -> Outgoing:
    reason = _REASONS[decision.status]
    slot = decision.reserved_slot if decision.status in _RESERVED else None
    return deferred_copy(job, delay_s=min(MAX_DELAY_S, decision.retry_after), reason=reason, reserved_slot=slot)


def _parse_all(records: Sequence[Mapping[str, Any]]) -> list[Inbound]:
    parsed = []
    for record in records:
        try:
            parsed.append(parse_record(record))
        except (KeyError, TypeError, AttributeError):
            logger.error("event record without messageId ignored: not an SQS record")
    return parsed


def _split_duplicates(jobs: list[Inbound]) -> tuple[list[Inbound], list[tuple[Inbound, str]]]:
    """First record of each identity, and (later record, first record's message id) pairs."""
    first: dict[str, Inbound] = {}
    followers: list[tuple[Inbound, str]] = []
    for job in jobs:
        primary = first.setdefault(job.identity, job)
        if primary is not job:
            followers.append((job, primary.message_id))
    return list(first.values()), followers
