"""Fixtures for the scraper's tests: a real moto plane (FIFO queue + DLQ, bucket, secrets), real Redis, the real
stand-in site, and helpers to run the worker in-process (asyncio) or as a `python -m scraper` subprocess.

- `plane` (per test): the FIFO queue with a FIFO DLQ (maxReceiveCount 3), the results bucket and both secrets.
- `scraper_env` (per test): the HUNTAZE_* environment of a worker pointed at moto, Redis and the stand-in.
- `make_settings(**overrides)`: `ScraperSettings` from that environment.
- `worker_processes`: start `python -m scraper` subprocesses, all killed at the end of the test.
Plain helpers live in `scraper_testkit.py` beside this file.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from scraper_testkit import MAX_RECEIVE_COUNT, TAG_ENV, Plane, WorkerProcess, tag_tmpdir

from scraper.settings import ScraperSettings
from standin import RENDERER_CRASH_LAUNCH_ARGS
from standin.testing import standin, standin_server  # noqa: F401 - fixtures for these tests


@pytest.fixture
def plane(aws: str) -> Plane:
    sqs = boto3.client("sqs", endpoint_url=aws, region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="huntaze-hybrid-workflows-dlq.fifo",
                           Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName="huntaze-hybrid-workflows.fifo",
        Attributes={
            "FifoQueue": "true", "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
        },
    )["QueueUrl"]
    boto3.client("s3", endpoint_url=aws, region_name="us-east-1").create_bucket(Bucket="huntaze-results")
    secrets = boto3.client("secretsmanager", endpoint_url=aws, region_name="us-east-1")
    secrets.create_secret(Name="onlyfans/api-key", SecretString=json.dumps({"api_key": "standin-api-key"}))
    secrets.create_secret(Name="onlyfans/login", SecretString=json.dumps({"password": "standin-password"}))
    return Plane(aws, queue, dlq, "huntaze-results")


@pytest.fixture
def worker_tag() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def scraper_env(plane: Plane, redis_url: str, standin: Any, worker_tag: str,  # noqa: F811
                monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "HUNTAZE_WORKFLOWS_QUEUE_URL": plane.queue_url,
        "HUNTAZE_RESULTS_BUCKET": plane.bucket,
        "HUNTAZE_SITE_URL": standin.url,
        "HUNTAZE_ADAPTER": "http",
        "HUNTAZE_WAIT_TIME_S": "1",
        "HUNTAZE_ACTION_TIMEOUT_S": "5",
        "HUNTAZE_JOB_DEADLINE_S": "20",
        "HUNTAZE_HEARTBEAT_INTERVAL_S": "2",
        "HUNTAZE_RETRY_BASE_S": "0.1",
        "HUNTAZE_HEALTH_PORT": "0",
        "HUNTAZE_HEALTH_HOST": "127.0.0.1",
        "HUNTAZE_METRICS_FLUSH_S": "1",
        "HUNTAZE_SHUTDOWN_BUDGET_S": "8",
        "HUNTAZE_EXTRA_CHROMIUM_ARGS": " ".join(RENDERER_CRASH_LAUNCH_ARGS),
        "HUNTAZE_CGROUP_DIR": "/nonexistent-cgroup",
        "REDIS_URL": redis_url,
        TAG_ENV: worker_tag,
        "TMPDIR": str(tag_tmpdir(worker_tag)),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def make_settings(scraper_env: dict[str, str]) -> Callable[..., ScraperSettings]:
    def make(**overrides: Any) -> ScraperSettings:
        return ScraperSettings(**overrides)

    return make


@pytest.fixture
def worker_processes() -> Iterator[Callable[[dict[str, str]], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(env: dict[str, str]) -> WorkerProcess:
        process = WorkerProcess(env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()
