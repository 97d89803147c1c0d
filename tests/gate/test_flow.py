"""End to end, time-scaled: ingress queue -> pump (Lambda's event source mapping) -> real handler -> FIFO queue.

Every loop is bounded in steps and time; figures (receives per job, API calls) are printed, and the asserted
bounds are the design's (O(1) receives per job), not timings.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from common import aws
from gate.batch import SQS_MAX_ATTEMPTS, SQS_READ_TIMEOUT_S
from localplane.services import RedisServer
from tests.gate.factories import Pump, Queues, make_job, max_in_window


@pytest.fixture(autouse=True)
def production_hold(queues: Queues, monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end, the gate holds short waits inside the invocation as in production (after `queues`, which
    turns holding off for the unit tests)."""
    monkeypatch.delenv("HUNTAZE_RATE_HOLD_MAX_S", raising=False)


def origin_ids(forwarded: list[dict[str, Any]]) -> list[str]:
    return [m["MessageAttributes"]["origin_message_id"]["StringValue"] for m in forwarded]


def admitted_at(forwarded: list[dict[str, Any]]) -> list[float]:
    return sorted(datetime.fromisoformat(m["MessageAttributes"]["rate_limit_timestamp"]["StringValue"]).timestamp()
                  for m in forwarded)


class ApiCounter:
    """Counts SQS API calls by (operation, queue name) through botocore's event hooks."""

    def __init__(self, sqs: Any) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.sqs = sqs
        sqs.meta.events.register("before-parameter-build.sqs", self._count)

    def _count(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        queue = str(params.get("QueueUrl", "")).rsplit("/", 1)[-1]
        self.calls[(model.name, queue)] += 1

    def close(self) -> None:
        self.sqs.meta.events.unregister("before-parameter-build.sqs", self._count)


def run_flow(pump: Pump, collect: Callable[[], list[dict[str, Any]]], expected: int, deadline_s: float) -> list[
        dict[str, Any]]:
    def all_forwarded() -> bool:
        return len(set(origin_ids(collect()))) >= expected

    assert pump.run_until(all_forwarded, deadline_s=deadline_s), (
        f"only {len(set(origin_ids(collect())))} of {expected} forwarded within {deadline_s}s")
    return collect()


def test_flow_seed_20_at_once_gives_10_per_window_none_lost(
    queues: Queues, pump: Pump, fifo_collector: Callable[[], list[dict[str, Any]]]
) -> None:
    sent = queues.send_jobs([make_job(creator_id=f"creator-{i % 4}") for i in range(20)])
    forwarded = run_flow(pump, fifo_collector, 20, deadline_s=40)
    assert sorted(origin_ids(forwarded)) == sorted(sent), "lost or forwarded twice"
    times = admitted_at(forwarded)
    t0 = times[0]
    assert sum(1 for t in times if t < t0 + 2) == 10
    assert sum(1 for t in times if t0 + 2 <= t < t0 + 4) == 10
    assert max_in_window(times, 2.0) <= 10
    assert queues.depth(queues.ingress_dlq) == 0 and queues.depth(queues.ingress) == 0
    assert max(pump.receives.values()) <= 2
    print(f"20 jobs: admitted over {times[-1] - t0:.2f}s, receives per job {dict(Counter(pump.receives.values()))}")


@pytest.mark.soak  # about 60 s: outside the default suite's 15 min budget, run by .ci/run after it
# deadline 300 s: a bound on a stall, not a timing (380 of 500 in 100 s were seen at load 15)
def test_flow_burst_of_500_all_forwarded_none_dead_lettered(
    queues: Queues, pump: Pump, fifo_collector: Callable[[], list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUNTAZE_RATE_LIMITS", "global=50/1s")
    sent = queues.send_jobs([make_job(creator_id=f"creator-{i % 25}") for i in range(500)])
    counter = ApiCounter(queues.sqs)  # the poller's calls
    gate_sqs = aws.client("sqs", read_timeout_s=SQS_READ_TIMEOUT_S, max_attempts=SQS_MAX_ATTEMPTS)
    gate_counter = ApiCounter(gate_sqs)  # the gate's own client (cached, the one Gate.from_settings builds)
    started = time.monotonic()
    try:
        forwarded = run_flow(pump, fifo_collector, 500, deadline_s=300)
    finally:
        counter.close()
        gate_counter.close()
    elapsed = time.monotonic() - started
    ids = origin_ids(forwarded)
    assert len(ids) == 500 and set(ids) == set(sent), "lost or forwarded twice"
    assert queues.depth(queues.ingress_dlq) == 0
    busiest = max_in_window(admitted_at(forwarded), 1.0)
    receives = Counter(pump.receives.values())
    gate_calls = sum(n for (op, q), n in gate_counter.calls.items() if op in ("SendMessageBatch", "SendMessage"))
    esm_calls = sum(n for (op, q), n in counter.calls.items()
                    if q == "huntaze-rate-limiter-queue" and op in ("ReceiveMessage", "DeleteMessageBatch"))
    mean = sum(pump.receives.values()) / len(pump.receives)
    print(f"500 burst in {elapsed:.1f}s: receives per job {dict(sorted(receives.items()))} (mean {mean:.2f}), "
          f"{pump.invocations} invocations; SQS calls per delivered job: gate {gate_calls / 500:.2f}, "
          f"poller {esm_calls / 500:.2f}, total {(gate_calls + esm_calls) / 500:.2f}; "
          f"busiest 1 s of forwards: {busiest} (limit 50)")
    # Receives per job: 1 (admitted at once, or held in the invocation for a slot a few seconds away) or 2
    # (deferred with a reserved slot, admitted when back). A job back late into a full window waits inside the
    # invocation and keeps its slot, so it costs no third receive; 3 is the bound.
    assert max(pump.receives.values()) <= 3, "a job was received more than 3 times"
    assert max_in_window(admitted_at(forwarded), 1.0) <= 50


def test_flow_redis_killed_and_restarted_loses_nothing(
    queues: Queues, pump: Pump, fifo_collector: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch, redis_factory: Callable[[], RedisServer],
) -> None:
    private = redis_factory()
    monkeypatch.setenv("REDIS_URL", private.url)
    monkeypatch.setenv("HUNTAZE_RATE_LIMITS", "global=10/1s")
    monkeypatch.setenv("HUNTAZE_REDIS_BACKOFF_BASE_S", "1")
    monkeypatch.setenv("HUNTAZE_REDIS_BACKOFF_MAX_S", "2")
    sent = queues.send_jobs([make_job() for _ in range(40)])
    assert pump.run_until(lambda: len(fifo_collector()) >= 10, deadline_s=20)
    private.kill()
    down_until = time.monotonic() + 3
    for _ in range(50):
        if time.monotonic() > down_until:
            break
        pump.step()
    private.start()
    forwarded = run_flow(pump, fifo_collector, 40, deadline_s=60)
    ids = origin_ids(forwarded)
    assert sorted(ids) == sorted(sent), "lost or forwarded twice"
    assert queues.depth(queues.ingress_dlq) == 0
    deferred_by_outage = [m for m in queues.drain(queues.ingress_dlq)]
    assert not deferred_by_outage
    print(f"redis outage: receives per job {dict(Counter(pump.receives.values()))}")


def test_flow_invalid_jobs_only_reach_the_ingress_dlq(
    queues: Queues, pump: Pump, fifo_collector: Callable[[], list[dict[str, Any]]]
) -> None:
    bodies = [json.dumps(make_job()) for _ in range(5)] + ["[]", "x" * 10, json.dumps(make_job(action="nope"))]
    for start in range(0, len(bodies), 10):
        queues.sqs.send_message_batch(QueueUrl=queues.ingress, Entries=[
            {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])])
    forwarded = run_flow(pump, fifo_collector, 5, deadline_s=20)
    assert len(forwarded) == 5
    dead = queues.drain(queues.ingress_dlq)
    assert len(dead) == 3 and all("error" in m["MessageAttributes"] for m in dead)
