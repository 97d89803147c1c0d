"""SQS side of the worker: receive, delete (batched), release, extend visibility, dead-letter.

Called by `scraper.worker`. boto3 is blocking: receives run in daemon threads (a 20 s long poll must never keep
a stopping process alive), the other calls in the default executor.

- `QueueClient.describe` reads the queue's VisibilityTimeout and RedrivePolicy once (maxReceiveCount, DLQ).
- `Received` is one message as the worker holds it: identity attributes, receive count, and `visible_until`
  (monotonic), which `VisibilityKeeper` (the heartbeat) pushes forward while the worker still holds it.
- `DeleteBatcher` gathers successful deletes into DeleteMessageBatch calls of up to 10.
- `QueueClient.dead_letter` sends a copy to the FIFO DLQ with ``error``, ``error_type`` and
  ``origin_message_id`` attributes, then deletes the original (see `scraper.worker` for when).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from common.aws import client

log = logging.getLogger(__name__)
T = TypeVar("T")
ATTRIBUTE_LIMIT = 1000
DELETE_ATTEMPTS = 3


@dataclass
class Received:
    message_id: str
    receipt_handle: str
    body: str
    group_id: str
    receive_count: int
    sent_timestamp_ms: int
    attributes: dict[str, str]
    received_at: float = field(default_factory=time.monotonic)
    visible_until: float = 0.0
    rounds: int = 0  # rounds of this job that failed at the platform while this worker held it
    overload_rounds: int = 0  # rounds that timed out under local CPU pressure (not counted as the platform's)
    # What this worker knows of the job from its own earlier runs of this delivery, independent of Redis (whose
    # marks are lost if it restarts empty): see `scraper.runner` ("Once only, without trusting Redis").
    result_checked: bool = False  # S3 held no result for the job when this delivery first ran
    stored_result: str = ""  # the S3 key of the result this worker stored for the job
    send_in_doubt: bool = False  # a send of this delivery may have reached the platform

    def last_receive(self, max_receive_count: int | None) -> bool:
        """True when SQS would move this message to the DLQ (without a reason) on its next receive."""
        return max_receive_count is not None and self.receive_count >= max_receive_count

    @property
    def origin_message_id(self) -> str:
        return self.attributes.get("origin_message_id") or self.message_id


@dataclass(frozen=True)
class QueueInfo:
    visibility_timeout_s: int
    max_receive_count: int | None
    dlq_url: str | None


def run_in_daemon_thread(fn: Callable[[], T]) -> asyncio.Future[T]:
    """Run a blocking call in a daemon thread: an abandoned call never delays process exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result, error = fn(), None
        except BaseException as exc:  # handed to the awaiting coroutine
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(deliver, result, error)

    threading.Thread(target=target, name="sqs-receive", daemon=True).start()
    return future


def _parse(raw: dict[str, Any], visibility_timeout_s: int) -> Received:
    system = raw.get("Attributes", {})
    attributes = {
        name: str(value.get("StringValue", ""))
        for name, value in raw.get("MessageAttributes", {}).items()
        if "StringValue" in value
    }
    now = time.monotonic()
    return Received(
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        body=raw.get("Body", ""),
        group_id=system.get("MessageGroupId", ""),
        receive_count=int(system.get("ApproximateReceiveCount", "1")),
        sent_timestamp_ms=int(system.get("SentTimestamp", "0")),
        attributes=attributes,
        received_at=now,
        visible_until=now + visibility_timeout_s,
    )


class QueueClient:
    def __init__(self, queue_url: str, dlq_url: str | None = None) -> None:
        self.queue_url = queue_url
        self.dlq_url = dlq_url
        self.info = QueueInfo(300, None, dlq_url)

    def _sqs(self) -> Any:
        return client("sqs")

    async def describe(self) -> QueueInfo:
        attrs = (await asyncio.to_thread(
            self._sqs().get_queue_attributes, QueueUrl=self.queue_url,
            AttributeNames=["VisibilityTimeout", "RedrivePolicy"],
        ))["Attributes"]
        max_receive, dlq_url = None, self.dlq_url
        if "RedrivePolicy" in attrs:
            policy = json.loads(attrs["RedrivePolicy"])
            max_receive = int(policy["maxReceiveCount"])
            if dlq_url is None:
                dlq_name = str(policy["deadLetterTargetArn"]).rsplit(":", 1)[-1]
                dlq_url = (await asyncio.to_thread(self._sqs().get_queue_url, QueueName=dlq_name))["QueueUrl"]
        self.dlq_url = dlq_url
        self.info = QueueInfo(int(attrs.get("VisibilityTimeout", "30")), max_receive, dlq_url)
        return self.info

    def receive_blocking(self, max_messages: int, wait_s: int) -> list[Received]:
        response = self._sqs().receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_s,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "MessageGroupId", "SentTimestamp"],
            MessageAttributeNames=["All"],
        )
        return [_parse(raw, self.info.visibility_timeout_s) for raw in response.get("Messages", [])]

    def receive(self, max_messages: int, wait_s: int) -> asyncio.Future[list[Received]]:
        return run_in_daemon_thread(lambda: self.receive_blocking(max_messages, wait_s))

    async def change_visibility(self, messages: list[Received], seconds: int) -> None:
        """Set visibility for up to any number of messages (batches of 10); failures are logged."""
        seconds = max(0, min(int(seconds), 43_200))
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                for i, m in enumerate(chunk)
            ]
            try:
                result = await asyncio.to_thread(
                    self._sqs().change_message_visibility_batch, QueueUrl=self.queue_url, Entries=entries
                )
            except Exception as exc:
                log.warning("change visibility failed", extra={"error": str(exc), "count": len(chunk)})
                continue
            failed = {f["Id"] for f in result.get("Failed", [])}
            now = time.monotonic()
            for i, message in enumerate(chunk):
                if str(i) not in failed:
                    message.visible_until = now + seconds
            if failed:
                log.warning("change visibility partly failed", extra={"failed": result.get("Failed")})

    async def delete(self, messages: list[Received]) -> None:
        """Delete, retrying failed entries a few times: a result is stored, and a message left behind would come
        back (and on its last receive, SQS would dead-letter a finished job)."""
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            for attempt in range(DELETE_ATTEMPTS):
                entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)]
                result = await asyncio.to_thread(
                    self._sqs().delete_message_batch, QueueUrl=self.queue_url, Entries=entries
                )
                failed = {f["Id"] for f in result.get("Failed", []) if not f.get("SenderFault")}
                if not result.get("Failed"):
                    break
                log.warning("delete partly failed", extra={"failed": result["Failed"], "attempt": attempt + 1})
                chunk = [m for i, m in enumerate(chunk) if str(i) in failed]
                if not chunk:
                    break
                await asyncio.sleep(0.2 * (attempt + 1))

    async def dead_letter(self, message: Received, error: str, error_type: str, dedup_key: str) -> None:
        """Copy `message` to the DLQ with the reason attached, then delete the original."""
        if self.dlq_url is None:
            raise RuntimeError(
                "no DLQ: set HUNTAZE_WORKFLOWS_DLQ_URL or give the queue a RedrivePolicy"
            )
        attributes: dict[str, Any] = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in message.attributes.items() if value
        }
        attributes.update({
            "error": {"DataType": "String", "StringValue": error[:ATTRIBUTE_LIMIT] or "unknown"},
            "error_type": {"DataType": "String", "StringValue": error_type},
            "origin_message_id": {"DataType": "String", "StringValue": message.origin_message_id},
            "receive_count": {"DataType": "Number", "StringValue": str(message.receive_count)},
        })
        await asyncio.to_thread(
            self._sqs().send_message,
            QueueUrl=self.dlq_url,
            MessageBody=message.body or "{}",
            MessageAttributes=attributes,
            MessageGroupId=message.group_id or "dead-letter",
            MessageDeduplicationId=hashlib.sha256(f"dlq:{dedup_key}".encode()).hexdigest(),
        )
        await self.delete([message])


class DeleteBatcher:
    """Collects deletes and sends them as DeleteMessageBatch calls of up to 10, at most `linger_s` late."""

    def __init__(self, queue: QueueClient, linger_s: float = 0.05) -> None:
        self._queue = queue
        self._linger_s = linger_s
        self._pending: list[Received] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="delete-batcher")

    def add(self, message: Received) -> None:
        self._pending.append(message)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if len(self._pending) < 10:
                await asyncio.sleep(self._linger_s)
            await self.flush()

    async def flush(self) -> None:
        self._wake.clear()
        while self._pending:
            batch, self._pending = self._pending[:10], self._pending[10:]
            try:
                await self._queue.delete(batch)
            except Exception as exc:  # the messages come back after their visibility; results are stored
                log.warning("delete batch failed", extra={"error": str(exc), "count": len(batch)})

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


class VisibilityKeeper:
    """The heartbeat: extends the visibility of every held message before it runs out.

    Held means running, queued behind a sibling of its group, or waiting (breaker, Retry-After, a slot): all are
    kept invisible here, so waiting never costs an SQS receive. The only messages it lets lapse are those whose
    job `is_stuck` says is stuck (running far past its deadline), so another task can take them over.
    """

    def __init__(self, queue: QueueClient, interval_s: float, extend_s: int,
                 is_stuck: Callable[[Received], bool] = lambda _: False) -> None:
        self._queue = queue
        self._interval_s = interval_s
        self._extend_s = extend_s
        self._is_stuck = is_stuck
        self.held: dict[str, Received] = {}

    def hold(self, message: Received) -> None:
        self.held[message.receipt_handle] = message

    def drop(self, message: Received) -> None:
        self.held.pop(message.receipt_handle, None)

    def due(self, now: float) -> list[Received]:
        """Messages whose visibility ends within two intervals, unless their job is stuck."""
        horizon = now + 2 * self._interval_s
        return [m for m in self.held.values() if m.visible_until < horizon and not self._is_stuck(m)]

    async def beat(self) -> int:
        due = self.due(time.monotonic())
        if due:
            await self._queue.change_visibility(due, self._extend_s)
        return len(due)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.beat()
            except Exception as exc:
                log.warning("visibility heartbeat failed", extra={"error": str(exc)})
