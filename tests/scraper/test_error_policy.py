"""Every row of the error policy, driven by the stand-in's fault injection, through the real worker."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis
from scraper_testkit import MAX_RECEIVE_COUNT, Plane, chromium_of, job, run_worker, wait_for

from common import redis_keys
from standin import Error5xxFault, Faults, RateLimitFault

STATE_KEY = redis_keys.breaker_state()


def _status_count(standin: Any, status: int, route_part: str = "") -> int:
    stats = standin.state.stats()
    return sum(
        counts.get(str(status), 0) for route, counts in stats["by_route"].items() if route_part in route
    )


def _receive_count(plane: Plane) -> int:
    """ApproximateReceiveCount of the only message in the queue (peeked by a zero-visibility receive)."""
    got = plane.sqs().receive_message(QueueUrl=plane.queue_url, VisibilityTimeout=0, WaitTimeSeconds=0,
                                      MessageSystemAttributeNames=["ApproximateReceiveCount"])
    (message,) = got["Messages"]
    return int(message["Attributes"]["ApproximateReceiveCount"])


def test_policy_429_holds_message_waits_retry_after_without_spending_receives(
        plane: Plane, standin: Any, make_settings: Any, redis_url: str) -> None:
    standin.set_faults(Faults(rate_limit=RateLimitFault(limit=0, window_s=60, retry_after_s=1)))
    plane.send(job("send_message", "rl-creator"))
    seen: dict[str, Any] = {}

    def storm_then_recovery(worker: Any) -> bool:
        failures = redis.Redis.from_url(redis_url).hget(STATE_KEY, "failures")
        if "recovered" not in seen and failures == b"3":
            # Held through three 429s: still in flight, never released, no result, the breaker fed each time.
            seen["in_flight"] = plane.counts()
            seen["failures"] = failures
            seen["429s"] = _status_count(standin, 429)
            seen["results"] = plane.result_keys()
            standin.set_faults(Faults())
            seen["recovered"] = True
        return plane.result_keys() != [] and plane.counts() == (0, 0)

    worker = run_worker(make_settings(), until=storm_then_recovery, timeout_s=60)
    assert seen["in_flight"] == (0, 1) and seen["results"] == [] and seen["429s"] == 3
    assert worker.messages_received == 1 and worker.jobs_waiting >= 3
    assert plane.read_json(plane.result_keys()[0])["status"] == "success"
    assert len(standin.state.messages()) == 1
    assert plane.counts(plane.dlq_url) == (0, 0)


def test_policy_5xx_retries_within_job_then_succeeds(plane: Plane, standin: Any, make_settings: Any) -> None:
    standin.set_faults(Faults(error_5xx=Error5xxFault(next=2, status=503)))
    plane.send(job("send_message", "flaky"))
    run_worker(make_settings(), until=lambda w: len(plane.result_keys()) == 1, timeout_s=30)

    assert _status_count(standin, 503) == 2
    assert len(standin.state.messages()) == 1
    assert plane.read_json(plane.result_keys()[0])["status"] == "success"


def test_policy_5xx_exhausted_rounds_dead_letter_with_reason_and_no_result(
        plane: Plane, standin: Any, make_settings: Any) -> None:
    standin.set_faults(Faults(error_5xx=Error5xxFault(rate=1.0, status=502)))
    origin = plane.send(job("scrape_profile", "down"))
    worker = run_worker(make_settings(breaker_threshold=100),
                        until=lambda w: plane.counts(plane.dlq_url)[0] == 1, timeout_s=60)

    # 1 attempt + 3 retries per round, MAX_RECEIVE_COUNT rounds held by one receive, then dead-lettered by us.
    assert _status_count(standin, 502) == 4 * MAX_RECEIVE_COUNT
    assert worker.messages_received == 1
    (dead,) = plane.dead_letters()
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["error_type"] == "network"
    assert "502" in attributes["error"] and f"after {MAX_RECEIVE_COUNT} failed rounds" in attributes["error"]
    assert attributes["origin_message_id"] == origin and attributes["receive_count"] == "1"
    assert plane.counts() == (0, 0)
    assert plane.result_keys() == []  # a job in the DLQ has no result
    # every failed round counts under its class (status shows the failure rate by class)
    assert worker.metrics.totals["scraping_failure_count:network"] == MAX_RECEIVE_COUNT


@pytest.mark.parametrize(("status", "error_type"), [(404, "validation"), (403, "auth")])
def test_policy_4xx_stores_failure_and_deletes(status: int, error_type: str, plane: Plane, standin: Any,
                                               make_settings: Any) -> None:
    standin.set_faults(Faults(fail_creators={"gone": status}))
    plane.send(job("get_messages", "gone"))
    worker = run_worker(make_settings(), until=lambda w: plane.result_keys() != [] and plane.counts() == (0, 0),
               timeout_s=30)

    result = plane.read_json(plane.result_keys()[0])
    assert (result["status"], result["error"]["type"]) == ("failure", error_type)
    assert worker.metrics.totals[f"scraping_failure_count:{error_type}"] == 1  # status: failure rate by class
    assert _status_count(standin, status) == 1  # never retried
    assert plane.counts(plane.dlq_url) == (0, 0)


def test_policy_poison_body_goes_to_dlq_at_once(plane: Plane, standin: Any, make_settings: Any) -> None:
    plane.send(job("get_messages", "poison"), body='{"action": "dance", "creator_id": "poison"}')
    run_worker(make_settings(), until=lambda w: plane.counts(plane.dlq_url)[0] == 1, timeout_s=30)

    (dead,) = plane.dead_letters()
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["error_type"] == "validation" and "action" in attributes["error"]
    assert plane.counts() == (0, 0)
    assert standin.state.stats()["total"] == 0


def test_policy_renderer_crash_retries_once_per_round_then_dead_letters(
        plane: Plane, standin: Any, make_settings: Any, worker_tag: str) -> None:
    standin.set_faults(Faults(crash_creators=["crashy"]))
    plane.send(job("scrape_profile", "crashy"))
    run_worker(make_settings(adapter="browser"), until=lambda w: plane.counts(plane.dlq_url)[0] == 1,
               timeout_s=90)

    pages = _status_count(standin, 200, "/u/")
    assert pages == 2 * MAX_RECEIVE_COUNT  # each round: the attempt and one retry
    assert plane.result_keys() == []
    (dead,) = plane.dead_letters()
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["error_type"] == "unknown" and "crash" in attributes["error"].lower()
    wait_for(lambda: not chromium_of(worker_tag), 15, "every Chromium of the worker to exit")


@pytest.mark.soak  # about 20 s: outside the default suite's 15 min budget, run by .ci/run
def test_policy_hanging_page_retries_longer_while_it_fits_then_dead_letters(
        plane: Plane, standin: Any, make_settings: Any, worker_tag: str,
        caplog: pytest.LogCaptureFixture) -> None:
    standin.set_faults(Faults(hang_creators=["stuck"]))
    plane.send(job("get_messages", "stuck"))
    settings = make_settings(adapter="browser", action_timeout_s=0.5, job_deadline_s=3.0)
    with caplog.at_level(logging.INFO):
        run_worker(settings, until=lambda w: plane.counts(plane.dlq_url)[0] == 1, timeout_s=90)

    ladders = [r.attempts for r in caplog.records if r.getMessage() == "attempts"]  # type: ignore[attr-defined]
    # Each round: the first attempt times out, a longer one runs if it fits the budget, then the round gives up
    # (by the attempt's own timeout, or by the job's budget when both end together on a loaded machine).
    # Under CPU pressure an attempt's timeout is stretched, so a longer retry may no longer fit: then the round
    # gives up after its first attempt.
    assert ladders
    for ladder in ladders:
        assert ladder[-1].endswith("give up"), ladders
        assert all(step.startswith(("ActionTimeout", "CancelledError")) for step in ladder), ladders
        assert all(step.endswith(("retry with 1s", "give up")) for step in ladder), ladders
    (dead,) = plane.dead_letters()
    assert {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}["error_type"] == "network"
    wait_for(lambda: standin.active_hangs == 0, 15, "hanging responses to be released by the closed contexts")
    wait_for(lambda: not chromium_of(worker_tag), 15, "every Chromium of the worker to exit")


def test_policy_timeout_under_cpu_pressure_is_not_the_platforms_failure(
        plane: Plane, standin: Any, make_settings: Any, redis_url: str, tmp_path: Any) -> None:
    (tmp_path / "cpu.pressure").write_text("some avg10=92.00 avg60=80.00 avg300=60.00 total=1\n"
                                           "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    standin.set_faults(Faults(hang_creators=["starved"]))
    plane.send(job("get_messages", "starved"))
    settings = make_settings(adapter="browser", action_timeout_s=0.5, job_deadline_s=2.0, max_rounds=1,
                             cgroup_dir=str(tmp_path))
    worker = run_worker(settings, until=lambda w: plane.counts(plane.dlq_url)[0] == 1, timeout_s=120)

    (dead,) = plane.dead_letters()
    reason = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}["error"]
    # One counted round would have dead-lettered it; under pressure it got twice max_rounds uncounted rounds.
    assert "2 times under local CPU pressure" in reason, reason
    assert worker.messages_received == 1
    assert redis.Redis.from_url(redis_url).hget(STATE_KEY, "failures") in (None, b"0")
    assert plane.result_keys() == []
