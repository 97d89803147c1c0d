"""Helpers for the scraper's tests (imported by tests/scraper/conftest.py and the test modules).

- `Plane`: the moto resources of one test and shortcuts to send jobs and read queues, S3 and the DLQ.
- `job(...)`: a valid `Job` for an action, unique per call (its own correlation id).
- `run_worker(settings, until=...)`: run a `Worker` in this process until a condition holds, then stop it.
- `WorkerProcess`: `python -m scraper` as a subprocess (signals, SIGKILL, restarts), with its JSON log lines.
- `chromium_of(tag)`: live Chromium processes carrying a test's marker in their environment, so checks never
  see other engineers' browsers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from common.contract import Job
from scraper.adapters.base import SiteAdapter
from scraper.settings import ScraperSettings
from scraper.worker import Worker

REPO = Path(__file__).resolve().parents[2]
MAX_RECEIVE_COUNT = 3
TAG_ENV = "HUNTAZE_TEST_WORKER_TAG"


@dataclass
class Plane:
    endpoint: str
    queue_url: str
    dlq_url: str
    bucket: str

    def sqs(self) -> Any:
        return boto3.client("sqs", endpoint_url=self.endpoint, region_name="us-east-1")

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def send(self, job: Job, *, origin: str | None = None, dedup: str | None = None,
             body: str | None = None) -> str:
        attributes = {
            "rate_limit_timestamp": {"DataType": "String", "StringValue": datetime.now(UTC).isoformat()},
            "tokens_remaining": {"DataType": "Number", "StringValue": "9"},
            "rate_limiter_version": {"DataType": "String", "StringValue": "test"},
            "gate_deferrals": {"DataType": "Number", "StringValue": "0"},
        }
        if origin:
            attributes["origin_message_id"] = {"DataType": "String", "StringValue": origin}
        response = self.sqs().send_message(
            QueueUrl=self.queue_url, MessageBody=body or job.to_body(), MessageGroupId=job.creator_id,
            MessageDeduplicationId=dedup or uuid.uuid4().hex, MessageAttributes=attributes,
        )
        return str(response["MessageId"])

    def counts(self, url: str | None = None) -> tuple[int, int]:
        attrs = self.sqs().get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def result_keys(self, prefix: str = "results/") -> list[str]:
        listed = self.s3().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def read_json(self, key: str) -> dict[str, Any]:
        return dict(json.loads(self.s3().get_object(Bucket=self.bucket, Key=key)["Body"].read()))

    def drain_dead_letters(self) -> list[dict[str, Any]]:
        """Every DLQ message, read and deleted: a FIFO DLQ hides a group's later messages while an earlier one
        is in flight, so reading without deleting cannot see them all."""
        found: list[dict[str, Any]] = []
        sqs = self.sqs()
        while self.counts(self.dlq_url) != (0, 0):
            got = sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                      MessageAttributeNames=["All"], VisibilityTimeout=30)
            for message in got.get("Messages", []):
                found.append(message)
                sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def dead_letters(self) -> list[dict[str, Any]]:
        response = self.sqs().receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0,
        )
        return list(response.get("Messages", []))


def job(action: str, creator: str, user: str = "fan-1", n: int = 0, **fields: Any) -> Job:
    payload: dict[str, Any] = {
        "action": action, "creator_id": creator, "user_id": user,
        "timestamp": datetime(2025, 10, 29, 12, 0, n % 60, tzinfo=UTC).isoformat(),
        "metadata": {"correlation_id": f"{creator}-{action}-{n}-{uuid.uuid4().hex[:8]}"},
    }
    if action == "send_message":
        payload["message_content"] = fields.pop("text", f"hello {n} from {creator}")
    if action == "scrape_profile":
        payload["profile_url"] = fields.pop("profile_url", f"https://site.invalid/u/{creator}")
    if action == "download_media":
        payload["media_urls"] = fields.pop(
            "media_urls", [f"https://site.invalid/media/{creator}-m1/download",
                           f"https://site.invalid/media/{creator}-m2/download"])
    payload.update(fields)
    return Job.model_validate(payload)


def run_worker(settings: ScraperSettings, until: Callable[[Worker], bool], *, timeout_s: float = 60.0,
               adapter: SiteAdapter | None = None, clock: Callable[[], float] | None = None,
               on_tick: Callable[[Worker], None] | None = None) -> Worker:
    """Run a Worker in this thread's event loop until `until(worker)` holds, then stop it cleanly."""

    async def main() -> Worker:
        kwargs: dict[str, Any] = {"adapter": adapter}
        if clock is not None:
            kwargs["clock"] = clock
        worker = Worker(settings, **kwargs)
        task = asyncio.create_task(worker.run())
        deadline = time.monotonic() + timeout_s
        try:
            while not until(worker):
                if task.done():
                    task.result()
                    pytest.fail("the worker stopped before the condition held")
                if time.monotonic() > deadline:
                    pytest.fail(f"condition not reached within {timeout_s}s")
                if on_tick is not None:
                    on_tick(worker)
                await asyncio.sleep(0.05)
        finally:
            worker.request_stop()
            await asyncio.wait_for(task, timeout=60)
        return worker

    return asyncio.run(main())


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)


def _environ_has(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes() + b"\0"
    except OSError:
        return False


def tag_tmpdir(tag: str) -> Path:
    """The TMPDIR a test's workers run with. Chromium gets a minimal environment (no HUNTAZE_* variables) but
    keeps TMPDIR, so this directory's name is what marks a test's Chromium processes."""
    path = Path("/tmp") / f"huntaze-scraper-test-{tag}"
    path.mkdir(exist_ok=True)
    return path


def chromium_of(tag: str) -> set[int]:
    """Live (non-zombie) Chromium processes whose environment carries this test's TMPDIR (`tag_tmpdir`)."""
    marker = f"TMPDIR={tag_tmpdir(tag)}\0".encode()
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmd = Path(stat.parent, "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if text.rsplit(")", 1)[1].split()[0] == "Z" or b"chromium" not in cmd:
            continue
        pid = int(stat.parent.name)
        if _environ_has(pid, marker):
            found.add(pid)
    return found


class WorkerProcess:
    """`python -m scraper` as a subprocess with its JSON log lines collected."""

    def __init__(self, env: dict[str, str]) -> None:
        full = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scraper"], cwd=REPO, env=full,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            text = line.decode(errors="replace").rstrip()
            self.raw.append(text)
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(text))

    def logged(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("message") == message]

    def wait_logged(self, message: str, timeout_s: float = 60.0) -> dict[str, Any]:
        def seen() -> bool:
            if self.proc.poll() is not None and not self.logged(message):
                pytest.fail(f"worker exited ({self.proc.returncode}) before logging {message!r}:\n"
                            + "\n".join(self.raw[-30:]))
            return bool(self.logged(message))

        wait_for(seen, timeout_s, f"worker to log {message!r}")
        return self.logged(message)[0]

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout_s: float) -> int:
        return self.proc.wait(timeout=timeout_s)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


