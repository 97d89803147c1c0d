"""Putting jobs on the pipeline: `enqueue(job)` for any producer (the web API, scripts, `huntazectl send`).

Every job is checked against the contract (`common.contract.Job`) before anything is sent, and gets a
``metadata.correlation_id`` if it has none, so that a retried send keeps one identity and the gate and the
scraper treat the copy as the same job (at-least-once sending, exactly-once effect). Sends are batched with
SendMessageBatch (at most 10 entries and 256 KiB per call); entries SQS refuses for a transient reason are
retried with backoff, and what still fails is raised as `EnqueueError` naming each job.

Per-creator order: SQS gives every message of one SendMessageBatch the same SentTimestamp, so the send time
alone cannot order a creator's jobs sent together. Each message therefore carries ``first_seen``, its enqueue
time in microseconds, strictly increasing within a producer; the gate orders a creator's jobs by it
(`gate.records`, decide.lua I4).

    from common.producer import enqueue, Producer
    enqueue({"action": "get_messages", "creator_id": "c1", "user_id": "u1", "timestamp": "..."})
    with Producer() as producer:          # streaming: buffers, sends a batch every 10 jobs, flushes on exit
        for job in jobs:
            producer.enqueue(job)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from common.aws import client
from common.contract import SQS_MAX_BODY_BYTES, ContractError, Job
from common.identity import FIRST_SEEN_ATTR

INGRESS_QUEUE = "huntaze-rate-limiter-queue"
MAX_BATCH_ENTRIES = 10
MAX_ATTEMPTS = 5
BACKOFF_BASE_S = 0.2


class EnqueueError(RuntimeError):
    """Some jobs were not queued after retries; `failed` maps each correlation id to SQS's reason.

    The jobs not named were queued. Sending the failed ones again is safe: they keep their correlation id.
    """

    def __init__(self, failed: dict[str, str]) -> None:
        self.failed = failed
        listed = "; ".join(f"{cid}: {why}" for cid, why in list(failed.items())[:5])
        more = f" (+{len(failed) - 5} more)" if len(failed) > 5 else ""
        super().__init__(f"{len(failed)} job(s) not queued: {listed}{more}; resending them is safe")


def prepare(job: Job | Mapping[str, Any]) -> Job:
    """Validate a job (a `Job` or a plain mapping) and give it a correlation id if it has none.

    Raises `ContractError` (one ``field: message`` per problem) for a job the gate would dead-letter.
    """
    parsed = job if isinstance(job, Job) else _validate(job)
    if parsed.metadata.correlation_id:
        return parsed
    metadata = parsed.metadata.model_copy(update={"correlation_id": f"job-{uuid.uuid4().hex}"})
    return parsed.model_copy(update={"metadata": metadata})


def _validate(doc: Mapping[str, Any]) -> Job:
    from pydantic import ValidationError

    try:
        return Job.model_validate(dict(doc))
    except ValidationError as exc:
        raise ContractError.from_validation(exc) from None


def queue_url(queue_name: str = INGRESS_QUEUE) -> str:
    return str(client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"])


@dataclass
class Producer:
    """Buffers validated jobs and sends them in SendMessageBatch calls; use as a context manager or `flush()`."""

    url: str | None = None
    queue_name: str = INGRESS_QUEUE
    sent: list[str] = field(default_factory=list)  # correlation ids queued so far, in send order
    message_ids: dict[str, str] = field(default_factory=dict)  # correlation id -> SQS MessageId (origin id)
    _buffer: list[tuple[Job, str, str]] = field(default_factory=list)  # job, body, first_seen
    _last_us: int = 0

    def enqueue(self, job: Job | Mapping[str, Any]) -> str:
        """Validate and buffer one job; sends a batch when 10 are buffered. Returns its correlation id."""
        ready = prepare(job)
        body = ready.to_body()
        if sum(len(b) + 64 for _, b, _ in self._buffer) + len(body) + 64 > SQS_MAX_BODY_BYTES:
            self.flush()
        self._last_us = max(time.time_ns() // 1000, self._last_us + 1)
        stamp = datetime.fromtimestamp(self._last_us // 1_000_000, UTC).replace(microsecond=self._last_us % 1_000_000)
        self._buffer.append((ready, body, stamp.isoformat(timespec="microseconds")))
        if len(self._buffer) >= MAX_BATCH_ENTRIES:
            self.flush()
        return str(ready.metadata.correlation_id)

    def flush(self) -> None:
        batch, self._buffer = self._buffer, []
        if batch:
            self._send(batch)

    def _send(self, batch: list[tuple[Job, str, str]]) -> None:
        sqs = client("sqs")
        url = self.url or queue_url(self.queue_name)
        self.url = url
        pending = {str(i): entry for i, entry in enumerate(batch)}
        reasons: dict[str, str] = {}
        for attempt in range(MAX_ATTEMPTS):
            reply = sqs.send_message_batch(
                QueueUrl=url, Entries=[
                    {"Id": i, "MessageBody": body,
                     "MessageAttributes": {FIRST_SEEN_ATTR: {"DataType": "String", "StringValue": seen}}}
                    for i, (_, body, seen) in pending.items()]
            )
            for ok in reply.get("Successful", []):
                cid = str(pending.pop(ok["Id"])[0].metadata.correlation_id)
                self.sent.append(cid)
                self.message_ids[cid] = str(ok["MessageId"])
            retry: dict[str, tuple[Job, str, str]] = {}
            for bad in reply.get("Failed", []):
                job = pending[bad["Id"]][0]
                reasons[str(job.metadata.correlation_id)] = f"{bad.get('Code')}: {bad.get('Message', '')}"
                if not bad.get("SenderFault"):
                    retry[bad["Id"]] = pending[bad["Id"]]
            pending = retry
            if not pending:
                break
            time.sleep(BACKOFF_BASE_S * 2**attempt)  # SQS's own advice for a failed batch entry: back off, resend
        failed = {cid: why for cid, why in reasons.items() if cid not in set(self.sent)}
        if failed:
            raise EnqueueError(failed)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.flush()


def enqueue(*jobs: Job | Mapping[str, Any], queue_name: str = INGRESS_QUEUE) -> list[str]:
    """Validate every job first (nothing is sent if one is invalid), then send them in batches of 10.

    Returns the correlation ids in order. Raises `ContractError` for an invalid job, `EnqueueError` if SQS
    still refused some after retries.
    """
    ready = [prepare(job) for job in jobs]
    for job in ready:
        job.to_body()  # size check before any send
    producer = Producer(queue_name=queue_name)
    with producer:
        for job in ready:
            producer.enqueue(job)
    return producer.sent

