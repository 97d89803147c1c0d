"""FIFO order per creator under concurrency, group release after a failure, idempotent redelivery, and the
breaker stopping the receive loop (through the real worker, moto, Redis and the stand-in)."""

from __future__ import annotations

import time
from typing import Any

from scraper_testkit import MAX_RECEIVE_COUNT, Plane, job, run_worker

from standin import Faults, RateLimitFault


def test_worker_fifo_under_concurrency_keeps_order_per_creator(plane: Plane, standin: Any,
                                                              make_settings: Any) -> None:
    standin.set_faults(Faults(latency_ms=15))
    creators = ["ann", "ben", "cat", "dan"]
    for n in range(6):
        for creator in creators:
            plane.send(job("send_message", creator, n=n, text=f"{creator}-{n}"))
    run_worker(make_settings(concurrency=3), until=lambda w: len(standin.state.messages()) == 24
               and plane.counts() == (0, 0), timeout_s=90)

    for creator in creators:
        texts = [m.text for m in standin.state.messages() if m.creator_id == creator]
        assert texts == [f"{creator}-{n}" for n in range(6)]


def test_worker_waiting_job_holds_its_group_in_order_without_spending_receives(
        plane: Plane, standin: Any, make_settings: Any) -> None:
    standin.set_faults(Faults(rate_limit=RateLimitFault(limit=1, window_s=300, retry_after_s=1)))
    for n in range(4):
        plane.send(job("send_message", "grp", n=n, text=f"grp-{n}"))
    seen: dict[str, Any] = {}

    def phases(worker: Any) -> bool:
        if "cleared" not in seen and standin.state.stats()["by_status"].get("429", 0) >= 2:
            # The second message waited out two 429s; the third and fourth were held behind it, never attempted.
            seen["status"] = dict(standin.state.stats()["by_status"])
            seen["counts"] = plane.counts()
            standin.set_faults(Faults())
            seen["cleared"] = True
        return len(standin.state.messages()) == 4 and plane.counts() == (0, 0)

    worker = run_worker(make_settings(), until=phases, timeout_s=60)
    assert seen["status"] == {"201": 1, "429": 2}
    assert seen["counts"] == (0, 3)  # all held by the worker, not released
    assert worker.messages_received == 4  # each delivered once: the held group never went back to the queue
    assert [m.text for m in standin.state.messages()] == [f"grp-{n}" for n in range(4)]
    assert plane.counts(plane.dlq_url) == (0, 0)


def test_worker_redelivered_done_job_is_deleted_not_rerun(plane: Plane, standin: Any,
                                                          make_settings: Any) -> None:
    original = job("send_message", "idem", text="only once")
    first = plane.send(original, origin="ingress-1")
    run_worker(make_settings(), until=lambda w: plane.result_keys() != [] and plane.counts() == (0, 0))
    (key,) = plane.result_keys()
    stored = plane.read_json(key)
    assert stored["message_id"] == "ingress-1" != first

    plane.send(original, origin="ingress-1")  # the same job delivered again (new SQS message, same identity)
    worker = run_worker(make_settings(), until=lambda w: w.jobs_finished == 1 and plane.counts() == (0, 0))
    assert worker.jobs_finished == 1
    assert [m.text for m in standin.state.messages()] == ["only once"]
    assert plane.result_keys() == [key] and plane.read_json(key) == stored


class StepClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_worker_breaker_opens_after_five_429s_blocks_receiving_then_probes(
        plane: Plane, standin: Any, make_settings: Any) -> None:
    standin.set_faults(Faults(rate_limit=RateLimitFault(limit=0, window_s=60, retry_after_s=1)))
    for n in range(5):
        plane.send(job("get_messages", f"c{n}"))
    clock = StepClock()
    seen: dict[str, int] = {}

    def blocked(worker: Any) -> bool:
        if worker.metrics.totals.get("circuit_breaker_open_count") != 1:
            return False
        seen.setdefault("receives", worker.receives)
        seen.setdefault("waits", worker.jobs_waiting + worker.breaker_waits)
        return worker.jobs_waiting + worker.breaker_waits >= seen["waits"] + 3

    def phases(worker: Any) -> bool:
        if "probed" in seen:
            return len(plane.result_keys()) == 5 and plane.counts() == (0, 0)
        if blocked(worker):
            # Open: five 429s and not one receive since. Now let the open period pass on the injected clock.
            assert standin.state.stats()["by_status"] == {"429": 5}
            assert worker.receives == seen["receives"]
            standin.set_faults(Faults())
            clock.offset += 61
            seen["probed"] = 1
        return False

    worker = run_worker(make_settings(concurrency=1), until=phases, clock=clock, timeout_s=60)
    assert worker.metrics.totals["circuit_breaker_open_count"] == 1
    assert standin.state.stats()["by_status"]["200"] == 5


def test_worker_shutdown_on_last_receive_dead_letters_with_reason_not_release(
        plane: Plane, standin: Any, make_settings: Any) -> None:
    standin.set_faults(Faults(hang_creators=["lastgo"]))
    origin = plane.send(job("get_messages", "lastgo"))
    for _ in range(MAX_RECEIVE_COUNT - 1):  # spend all receives but the last (as crashed workers would have)
        got = plane.sqs().receive_message(QueueUrl=plane.queue_url, VisibilityTimeout=0, WaitTimeSeconds=1)
        assert len(got["Messages"]) == 1
    worker = run_worker(make_settings(adapter="browser", action_timeout_s=30, job_deadline_s=60),
                        until=lambda w: standin.active_hangs >= 1, timeout_s=60)

    # Released, it would reach the DLQ through redrive without a reason: the worker put it there itself.
    (dead,) = plane.drain_dead_letters()
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["origin_message_id"] == origin
    assert f"last allowed receive ({MAX_RECEIVE_COUNT} of {MAX_RECEIVE_COUNT})" in attributes["error"]
    assert worker.dead_lettered == 1
    assert plane.counts() == (0, 0) and plane.result_keys() == []


def test_worker_same_job_as_two_messages_in_one_receive_acts_once(plane: Plane, standin: Any,
                                                                  make_settings: Any) -> None:
    """One job, two FIFO messages (a producer retry past the deduplication window: same correlation id, new
    message), received together in one batch with a job of another creator between them: one send, one result,
    nothing dead-lettered, the other creator's job done too."""
    original = job("send_message", "twice", text="exactly once")
    other = job("send_message", "bystander", text="bystander's")
    plane.send(original)
    plane.send(other)
    plane.send(original)
    worker = run_worker(make_settings(), until=lambda w: plane.counts() == (0, 0) and len(plane.result_keys()) == 2)
    assert sorted(m.text for m in standin.state.messages()) == ["bystander's", "exactly once"]
    assert len(plane.result_keys("results/twice/")) == 1
    assert plane.dead_letters() == []
    assert worker.dead_lettered == 0
