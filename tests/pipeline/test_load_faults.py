"""Failure scenarios during load, end to end on the local stack (issue 13, item 2).

Each scenario runs a moderate load (send_messages and the other actions over several creators, at the seed's
limit time-scaled by ``HUNTAZE_LOAD_TIME_SCALE``), injects one fault while jobs are flowing, removes it, waits
until every job has an outcome, and then checks `tests.helpers.invariants`: exactly one outcome per job (a
result, or a DLQ with a reason), no send_message twice at the platform, per-creator order, no process left.
Production timings stay (FIFO visibility 300 s, breaker 60 s), so a scenario whose recovery waits on them takes
that long: each test's timeout says how long at most.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import redis

from common import redis_keys
from standin.faults import Error5xxFault, Faults, RateLimitFault
from standin.testing import wait_until
from tests.helpers.pipeline import Pipeline, running_pipeline

ACTIONS = ("send_message", "scrape_profile", "send_message", "get_messages", "download_media")
BREAKER_OPEN_KEY = redis_keys.breaker_open()  # the versioned key the scraper sets and the gate reads
WORKFLOWS = "huntaze-hybrid-workflows.fifo"


def load(pipe: Pipeline, count: int, creators: int = 6, tag: str = "load") -> None:
    """`count` jobs, round by round over the creators, so each creator's jobs are sent in order."""
    for start in range(0, count, creators):
        batch = []
        for i in range(start, min(count, start + creators)):
            creator = f"creator_{i % creators}"
            batch.append(pipe.job(ACTIONS[(i // creators) % len(ACTIONS)], creator, text=f"{creator} {tag} {i:03d}"))
        pipe.send(batch)


def flowing(pipe: Pipeline, count: int) -> None:
    """Start the load and wait until jobs reach the platform: the fault must meet work in progress."""
    load(pipe, count)
    wait_until(lambda: platform_sends(pipe) >= 3, 180, "the first sends to reach the platform")


def platform_sends(pipe: Pipeline) -> int:
    return len(pipe.stack.site.state.messages())


def finish_and_check(pipe: Pipeline, timeout_s: float) -> tuple[int, list[str]]:
    done = pipe.wait_until_finished(timeout_s=timeout_s)
    return done, pipe.check_invariants()


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_redis_killed_and_restarted_during_load_every_job_ends_once(tmp_path: Path) -> None:
    with running_pipeline(tmp_path) as pipe:
        flowing(pipe, 36)
        pipe.stack.redis.kill()  # SIGKILL: limiter log, reservations, breaker, idempotency marks all lost
        load(pipe, 12, tag="during-outage")
        time.sleep(10)  # the outage itself: the pipeline must ride it out, not be told it is over
        pipe.stack.redis.start()
        done, problems = finish_and_check(pipe, timeout_s=600)
    assert done == 48
    assert problems == []


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_429_burst_during_load_opens_the_breaker_the_gate_holds_and_every_job_ends_once(tmp_path: Path) -> None:
    with running_pipeline(tmp_path) as pipe:
        r = redis.Redis.from_url(pipe.stack.redis.url)
        flowing(pipe, 36)
        pipe.stack.site.set_faults(Faults(rate_limit=RateLimitFault(limit=0, window_s=1, retry_after_s=5)))
        wait_until(lambda: bool(r.exists(BREAKER_OPEN_KEY)), 120, "the shared circuit breaker to open")
        held = sum(pipe.queue_depth(WORKFLOWS))
        most_while_open = held
        while r.exists(BREAKER_OPEN_KEY):  # the gate must not forward while the breaker is open
            most_while_open = max(most_while_open, sum(pipe.queue_depth(WORKFLOWS)))
            time.sleep(0.5)
        pipe.stack.site.set_faults(Faults())
        done, problems = finish_and_check(pipe, timeout_s=600)
        r.close()
    assert done == 36
    assert problems == []
    assert most_while_open <= held + 10, f"the gate forwarded {most_while_open - held} jobs while the breaker was open"


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_5xx_burst_during_load_is_retried_and_every_job_ends_once(tmp_path: Path) -> None:
    with running_pipeline(tmp_path) as pipe:
        flowing(pipe, 36)
        pipe.stack.site.set_faults(Faults(error_5xx=Error5xxFault(next=15, status=503)))
        load(pipe, 12, tag="into-the-5xx")  # these meet the burst of failures first
        done, problems = finish_and_check(pipe, timeout_s=600)
        rejected = pipe.stack.site.state.stats()["by_status"]
    assert rejected.get("503", 0) == 15, f"the 5xx burst did not happen as injected: {rejected}"  # type: ignore[union-attr]
    assert done == 48
    assert problems == []


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_poison_jobs_during_load_are_dead_lettered_with_a_reason_and_the_rest_complete(tmp_path: Path) -> None:
    with running_pipeline(tmp_path) as pipe:
        pipe.stack.site.set_faults(Faults(fail_creators={"creator_gone": 404}))
        load(pipe, 24)
        for body in ('{"action": "send_message"}', "not json at all", '{"action": "fly", "creator_id": "c"}', "[]"):
            pipe.send_raw(body)
        pipe.send([pipe.job("get_messages", "creator_gone")])  # valid, but the platform refuses it for good
        load(pipe, 12, tag="after-poison")
        done, problems = finish_and_check(pipe, timeout_s=600)
    assert done == 24 + 4 + 1 + 12
    assert problems == []


@pytest.mark.soak
@pytest.mark.timeout(1200)
def test_scraper_task_sigkilled_mid_job_is_replaced_and_every_job_ends_once(tmp_path: Path) -> None:
    with running_pipeline(tmp_path) as pipe:
        load(pipe, 30, creators=5)
        service = pipe.scraper()
        wait_until(lambda: pipe.queue_depth(WORKFLOWS)[1] > 0 and platform_sends(pipe) >= 2, 180,
                 "a scraper task to be in the middle of jobs")
        victim = service.tasks[0].proc
        started_before = service.started
        os.killpg(victim.pid, signal.SIGKILL)  # the task and its Chromium, with no warning
        wait_until(lambda: service.started > started_before and pipe.running_tasks() >= 1, 120,
                 "the service runner to replace the killed task")
        # The killed task's messages come back after their visibility (300 s, or as far as the heartbeat took it).
        done, problems = finish_and_check(pipe, timeout_s=900)
    assert victim.poll() == -signal.SIGKILL
    assert done == 30
    assert problems == []
