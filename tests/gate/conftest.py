"""Fixtures of the gate tests: the gate's queues on the moto server with its env set, a pump, a FIFO collector."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from common import redis_keys
from gate import handler as gate_handler
from tests.gate.factories import (
    INGRESS,
    INGRESS_DLQ,
    MAX_RECEIVE_COUNT,
    WORKFLOWS,
    WORKFLOWS_DLQ,
    Pump,
    Queues,
    aws_client,
)


def _create(sqs: Any, name: str, attributes: dict[str, str]) -> str:
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def _arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


@pytest.fixture
def redis_url(redis_url: str) -> str:
    """The session's Redis, flushed, and declared empty: these tests start with known-empty windows (a Redis
    that merely lost its memory counts the last W as full; see test_limiter_restart_*)."""
    redis.Redis.from_url(redis_url).set(redis_keys.LIMITER_EPOCH, "0", nx=True)
    return redis_url


@pytest.fixture
def queues(aws: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queues]:
    """The four queues of the gate on moto, the gate's env pointing at them, and a fresh handler."""
    sqs = aws_client()
    ingress_dlq = _create(sqs, INGRESS_DLQ, {})
    workflows_dlq = _create(sqs, WORKFLOWS_DLQ, {"FifoQueue": "true"})
    ingress = _create(sqs, INGRESS, {"VisibilityTimeout": "180", "RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": _arn(sqs, ingress_dlq), "maxReceiveCount": MAX_RECEIVE_COUNT})})
    workflows = _create(sqs, WORKFLOWS, {"FifoQueue": "true", "VisibilityTimeout": "300", "RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": _arn(sqs, workflows_dlq), "maxReceiveCount": MAX_RECEIVE_COUNT})})
    monkeypatch.setenv("HUNTAZE_WORKFLOWS_QUEUE_URL", workflows)
    monkeypatch.setenv("HUNTAZE_INGRESS_QUEUE_URL", ingress)
    monkeypatch.setenv("HUNTAZE_INGRESS_DLQ_URL", ingress_dlq)
    monkeypatch.setenv("HUNTAZE_RATE_LIMITS", "global=10/2s")
    # These tests look at the deferred copies; holding short waits inside the invocation (the default) is
    # tested on its own in test_hold.py.
    monkeypatch.setenv("HUNTAZE_RATE_HOLD_MAX_S", "0")
    gate_handler.reset()
    yield Queues(ingress, ingress_dlq, workflows, workflows_dlq)
    gate_handler.reset()


@pytest.fixture
def pump(queues: Queues) -> Pump:
    return Pump(queues)


@pytest.fixture
def fifo_collector(queues: Queues) -> Callable[[], list[dict[str, Any]]]:
    """Accumulates everything forwarded to the FIFO queue (received and deleted as it arrives)."""
    seen: list[dict[str, Any]] = []

    def collect() -> list[dict[str, Any]]:
        seen.extend(queues.drain(queues.workflows))
        return seen

    return collect
