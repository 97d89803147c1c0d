"""Every row of the error policy, driven by the stand-in's fault injection, through the real worker."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis
from scraper_testkit import MAX_RECEIVE_COUNT, Plane, chromium_of, job, run_worker, wait_for

from standin import Error5xxFault, Faults, RateLimitFault

STATE_KEY = "huntaze:breaker:onlyfans:state"


def _status_count(standin: Any, status: int, route_part: str = "") -> int:
    stats = standin.state.stats()
    return sum(
        counts.get(str(status), 0) for route, counts in stats["by_route"].items() if route_part in route
    )


def test_policy_429_keeps_message_sets_retry_after_and_feeds_breaker(
        plane: Plane, standin: Any, make_settings: Any, redis_url: str) -> None:
    standin.set_faults(Faults(rate_limit=RateLimitFault(limit=0, window_s=60, retry_after_s=4)))
    plane.send(job("send_message", "rl-creator"))
    run_worker(make_settings(), until=lambda w: _status_count(standin, 429) >= 1, timeout_s=30)

    # Not deleted, not visible: it waits out Retry-After, then comes back.
    assert plane.counts() == (0, 1)
    assert plane.result_keys() == []
    assert redis.Redis.from_url(redis_url).hget(STATE_KEY, "failures") == b"1"
    wait_for(lambda: plane.counts() == (1, 0), 15, "the message to be visible again after Retry-After")
    assert standin.state.messages() == []


def test_policy_5xx_retries_within_job_then_succeeds(plane: Plane, standin: Any, make_settings: Any) -> None:
    standin.set_faults(Faults(error_5xx=Error5xxFault(next=2, status=503)))
    plane.send(job("send_message", "flaky"))
    run_worker(make_settings(), until=lambda w: len(plane.result_keys()) == 1, timeout_s=30)

    assert _status_count(standin, 503) == 2
    assert len(standin.state.messages()) == 1
    assert plane.read_json(plane.result_keys()[0])["status"] == "success"


def test_policy_5xx_exhausted_releases_then_dead_letters_with_reason(
        plane: Plane, standin: Any, make_settings: Any) -> None:
    standin.set_faults(Faults(error_5xx=Error5xxFault(rate=1.0, status=502)))
    origin = plane.send(job("scrape_profile", "down"))
    run_worker(make_settings(), until=lambda w: plane.counts(plane.dlq_url)[0] == 1, timeout_s=60)

    # 1 attempt + 3 retries on each of the allowed receives, released in between, then dead-lettered by us.
    assert _status_count(standin, 502) == 4 * MAX_RECEIVE_COUNT
    (dead,) = plane.dead_letters()
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["error_type"] == "network"
    assert "502" in attributes["error"] and f"receive {MAX_RECEIVE_COUNT} of {MAX_RECEIVE_COUNT}" in attributes["error"]
    assert attributes["origin_message_id"] == origin
    assert plane.counts() == (0, 0)
    (key,) = plane.result_keys()
    assert plane.read_json(key)["status"] == "failure"


@pytest.mark.parametrize(("status", "error_type"), [(404, "validation"), (403, "auth")])
def test_policy_4xx_stores_failure_and_deletes(status: int, error_type: str, plane: Plane, standin: Any,
                                               make_settings: Any) -> None:
    standin.set_faults(Faults(fail_creators={"gone": status}))
    plane.send(job("get_messages", "gone"))
    run_worker(make_settings(), until=lambda w: plane.result_keys() != [] and plane.counts() == (0, 0),
               timeout_s=30)

    result = plane.read_json(plane.result_keys()[0])
    assert (result["status"], result["error"]["type"]) == ("failure", error_type)
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


def test_policy_renderer_crash_retries_once_then_releases(
        plane: Plane, standin: Any, make_settings: Any, worker_tag: str) -> None:
    standin.set_faults(Faults(crash_creators=["crashy"]))
    plane.send(job("scrape_profile", "crashy"))
    run_worker(make_settings(adapter="browser"), until=lambda w: plane.counts(plane.dlq_url)[0] == 1,
               timeout_s=90)

    pages = _status_count(standin, 200, "/u/")
    assert pages == 2 * MAX_RECEIVE_COUNT  # each receive: the attempt and one retry, then released
    (dead,) = plane.dead_letters()
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["error_type"] == "unknown" and "crash" in attributes["error"].lower()
    wait_for(lambda: not chromium_of(worker_tag), 15, "every Chromium of the worker to exit")


def test_policy_hanging_page_retries_longer_while_it_fits_then_releases(
        plane: Plane, standin: Any, make_settings: Any, worker_tag: str,
        caplog: pytest.LogCaptureFixture) -> None:
    standin.set_faults(Faults(hang_creators=["stuck"]))
    plane.send(job("get_messages", "stuck"))
    settings = make_settings(adapter="browser", action_timeout_s=0.5, job_deadline_s=3.0)
    with caplog.at_level(logging.INFO):
        run_worker(settings, until=lambda w: plane.counts(plane.dlq_url)[0] == 1, timeout_s=90)

    ladders = [r.attempts for r in caplog.records if r.getMessage() == "attempts"]  # type: ignore[attr-defined]
    assert ladders[0] == ["ActionTimeout: retry with 1s", "ActionTimeout: retry with 2s", "ActionTimeout: give up"] \
        or ladders[0] == ["ActionTimeout: retry with 1s", "ActionTimeout: give up"], ladders
    (dead,) = plane.dead_letters()
    assert {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}["error_type"] == "network"
    wait_for(lambda: standin.active_hangs == 0, 15, "hanging responses to be released by the closed contexts")
    wait_for(lambda: not chromium_of(worker_tag), 15, "every Chromium of the worker to exit")
