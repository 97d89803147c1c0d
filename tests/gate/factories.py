"""Factories of the gate tests: job payloads, Lambda SQS events built from real received messages, the queue
set on moto, and the pump that plays Lambda's event source mapping for the real handler.

The pump receives up to 10 messages from the ingress queue (moto honours DelaySeconds, visibility and the DLQ
redrive), turns them into a Lambda SQS event, calls the real handler, and deletes the records not reported in
``batchItemFailures``. It counts every receive per job (by origin message id).
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from common import aws as common_aws
from gate import handler as gate_handler
from tests.helpers.invariants import max_in_any_window

INGRESS = "huntaze-rate-limiter-queue"
INGRESS_DLQ = "huntaze-rate-limiter-dlq"
WORKFLOWS = "huntaze-hybrid-workflows.fifo"
WORKFLOWS_DLQ = "huntaze-hybrid-workflows-dlq.fifo"
MAX_RECEIVE_COUNT = 5  # manifests/queues.yaml (the ingress queue)
_counter = itertools.count()


def make_job(**overrides: Any) -> dict[str, Any]:
    """A valid job payload (the contract's `Job` as JSON), with overrides."""
    job: dict[str, Any] = {
        "action": "scrape_profile",
        "creator_id": "creator-1",
        "user_id": "user-1",
        "timestamp": datetime(2025, 10, 29, 12, 0, tzinfo=UTC).isoformat(),
        "profile_url": "https://creators.example/creator-1",
        "metadata": {"priority": "normal", "correlation_id": f"corr-{next(_counter)}-{uuid.uuid4().hex[:8]}"},
    }
    job.update(overrides)
    return job


def sqs_record(message: dict[str, Any], queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:q") -> dict[str, Any]:
    """A Lambda SQS event record from a ReceiveMessage result (or a hand-made message dict)."""
    attrs = {
        name: {"stringValue": value.get("StringValue"), "stringListValues": [], "binaryListValues": [],
               "dataType": value["DataType"]}
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message.get("ReceiptHandle", "rh-" + message["MessageId"]),
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000)),
                       **(message.get("Attributes") or {})},
        "messageAttributes": attrs,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": [sqs_record(m) for m in messages]}


@dataclass
class Queues:
    ingress: str
    ingress_dlq: str
    workflows: str
    workflows_dlq: str

    @property
    def sqs(self) -> Any:
        return common_aws.client("sqs")

    def send_jobs(self, jobs: list[dict[str, Any]]) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(jobs), 10):
            chunk = jobs[start : start + 10]
            resp = self.sqs.send_message_batch(
                QueueUrl=self.ingress,
                Entries=[{"Id": str(i), "MessageBody": json.dumps(j)} for i, j in enumerate(chunk)],
            )
            assert not resp.get("Failed"), resp.get("Failed")
            by_id = {e["Id"]: e["MessageId"] for e in resp["Successful"]}
            ids += [by_id[str(i)] for i in range(len(chunk))]
        return ids

    def drain(self, url: str, *, max_polls: int = 400) -> list[dict[str, Any]]:
        """Receive and delete everything visible now (FIFO groups unblock as we delete)."""
        found: list[dict[str, Any]] = []
        empty = 0
        for _ in range(max_polls):
            resp = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                            AttributeNames=["All"], WaitTimeSeconds=0)
            messages = resp.get("Messages", [])
            if not messages:
                empty += 1
                if empty >= 2:
                    return found
                continue
            empty = 0
            found += messages
            self.sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
        return found

    def depth(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return sum(int(attrs[k]) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                           "ApproximateNumberOfMessagesDelayed"))


def aws_client() -> Any:
    return common_aws.client("sqs")


@dataclass
class Pump:
    """Lambda's event source mapping, in a bounded loop, for the real handler."""

    queues: Queues
    receives: Counter[str] = field(default_factory=Counter)
    invocations: int = 0
    api_calls: Counter[str] = field(default_factory=Counter)

    def origin(self, message: dict[str, Any]) -> str:
        attr = (message.get("MessageAttributes") or {}).get("origin_message_id")
        return str(attr["StringValue"]) if attr else str(message["MessageId"])

    def step(self, wait_s: int = 1) -> int:
        sqs = self.queues.sqs
        resp = sqs.receive_message(QueueUrl=self.queues.ingress, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s,
                                   MessageAttributeNames=["All"], AttributeNames=["All"])
        messages = resp.get("Messages", [])
        if not messages:
            return 0
        for message in messages:
            self.receives[self.origin(message)] += 1
        result = gate_handler.handler(sqs_event(messages), None)
        self.invocations += 1
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(QueueUrl=self.queues.ingress, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        return len(messages)

    def run_until(self, done: Callable[[], bool], *, deadline_s: float, max_steps: int = 2000) -> bool:
        end = time.monotonic() + deadline_s
        for _ in range(max_steps):
            if done() or time.monotonic() > end:
                break
            self.step()
        return done()


def max_in_window(times: Sequence[float], window: float) -> int:
    """Most admissions in any half-open window, in the window's unit (the shared helper of tests/helpers)."""
    return max_in_any_window(times, window)
