"""The demo producer for `huntazectl up --demo N`: sends jobs like the web API would, then waits for outcomes.

Jobs cycle through the four actions and a few creators, against the stand-in platform's URLs. Progress is read
from where outcomes really land: result records in S3 and the two dead-letter queues. Every job must end in
exactly one of them.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from common.aws import client
from common.contract import Job

INGRESS_QUEUE = "huntaze-rate-limiter-queue"
DLQ_NAMES = ("huntaze-rate-limiter-dlq", "huntaze-hybrid-workflows-dlq.fifo")
CREATORS = ("creator_ava", "creator_ben", "creator_cy")


def demo_jobs(count: int, site_url: str) -> list[Job]:
    return [make_job(("send_message", "scrape_profile", "get_messages", "download_media")[i % 4],
                     CREATORS[i % len(CREATORS)], site_url, user=f"fan_{i % 5}",
                     text=f"Hello from the demo, job {i}", correlation_id=f"demo-{uuid.uuid4().hex[:12]}")
            for i in range(count)]


def make_job(action: str, creator: str, site_url: str, *, user: str = "fan_demo", text: str | None = None,
             correlation_id: str | None = None) -> Job:
    """A valid job of any action, its URLs on the stand-in platform (demo, load tests, benchmarks)."""
    doc: dict[str, Any] = {
        "action": action, "creator_id": creator, "user_id": user, "timestamp": datetime.now(UTC).isoformat(),
        "metadata": {"priority": "normal", "correlation_id": correlation_id or f"job-{uuid.uuid4().hex[:16]}"},
    }
    if action == "send_message":
        doc["message_content"] = text or f"{creator} message {uuid.uuid4().hex[:8]}"
    elif action == "scrape_profile":
        doc["profile_url"] = f"{site_url}/u/{creator}"
    elif action == "download_media":
        doc["media_urls"] = [f"{site_url}/media/{creator}-m1/download"]
    return Job.model_validate(doc)


def send(jobs: list[Job]) -> None:
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=INGRESS_QUEUE)["QueueUrl"]
    for start in range(0, len(jobs), 10):
        chunk = jobs[start:start + 10]
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": j.to_body()} for i, j in enumerate(chunk)]
        )


def results_bucket() -> str | None:
    names = [b["Name"] for b in client("s3").list_buckets().get("Buckets", [])]
    for name in names:
        if "results" in name:
            return str(name)
    return None


@dataclass
class Progress:
    done: int = 0
    failed_results: int = 0
    dead_lettered: int = 0
    by_action: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return self.done + self.dead_lettered


def progress(bucket: str | None) -> Progress:
    prog = Progress()
    if bucket:
        pages = client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="results/")
        for page in pages:
            for obj in page.get("Contents", []):
                prog.done += 1
                action = obj["Key"].split("/")[2]
                prog.by_action[action] = prog.by_action.get(action, 0) + 1
    sqs = client("sqs")
    for name in DLQ_NAMES:
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            continue
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        prog.dead_lettered += int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )
    return prog


def wait_for(total: int, timeout_s: float, on_tick: Any = None) -> Progress:
    deadline = time.monotonic() + timeout_s
    current = progress(results_bucket())
    while current.finished < total and time.monotonic() < deadline:
        time.sleep(1)  # polling AWS state for a person watching: one read per second
        current = progress(results_bucket())
        if on_tick:
            on_tick(current)
    return current


def summary(prog: Progress) -> str:
    return json.dumps({"done": prog.done, "dead_lettered": prog.dead_lettered, "by_action": prog.by_action})
