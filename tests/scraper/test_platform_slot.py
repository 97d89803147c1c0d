"""The platform slot in real Redis: several tasks acting against one limit never exceed N in any W by the
times their requests arrive (any moment inside a held slot), and waiting heartbeats the message."""

from __future__ import annotations

import asyncio
import random
import signal
from typing import Any

import pytest
from redis.asyncio import Redis
from scraper_testkit import Plane, job, wait_for

from scraper.platform_slot import PlatformSlot, parse_limit
from scraper.settings import ScraperSettings


async def redis_now(redis: Redis) -> float:
    seconds, micros = await redis.time()
    return int(seconds) + int(micros) / 1e6


def test_platform_slot_three_tasks_never_exceed_limit_at_arrival_times(redis_url: str) -> None:
    n, window = 2, 0.4

    async def scenario() -> tuple[list[tuple[int, float]], int]:
        redis = Redis.from_url(redis_url)
        arrivals: list[tuple[int, float]] = []
        job_ids = iter(range(1000))
        beats = 0
        rng = random.Random(7)

        async def beat() -> None:
            nonlocal beats
            beats += 1

        async def task(jobs: int) -> None:
            slot = PlatformSlot(redis, n, window, hold_s=30, heartbeat_every_s=0.2)
            for _ in range(jobs):
                async with slot.hold(beat):
                    job = next(job_ids)
                    # Requests of the job land anywhere inside the slot (login, page, action, a retry).
                    for _ in range(rng.randint(1, 3)):
                        await asyncio.sleep(rng.uniform(0, 0.15))
                        arrivals.append((job, await redis_now(redis)))

        await asyncio.wait_for(asyncio.gather(*(task(4) for _ in range(3))), timeout=60)
        await redis.aclose()
        return arrivals, beats

    arrivals, beats = asyncio.run(scenario())
    assert len({job for job, _ in arrivals}) == 12
    # In any window W (starting at any arrival), the requests that arrive come from at most N jobs.
    for _, start in arrivals:
        assert len({job for job, at in arrivals if start <= at < start + window}) <= n
    assert beats > 0, "a waiting task never heartbeated its message"


def test_platform_slot_jobs_started_never_exceed_limit_in_any_window(redis_url: str) -> None:
    n, window = 3, 0.5

    async def scenario() -> list[tuple[float, float]]:
        redis = Redis.from_url(redis_url)
        spans: list[tuple[float, float]] = []

        async def nothing() -> None:
            return None

        async def task(seed: int) -> None:
            rng = random.Random(seed)
            slot = PlatformSlot(redis, n, window, hold_s=30, heartbeat_every_s=5)
            for _ in range(4):
                async with slot.hold(nothing):
                    start = await redis_now(redis)
                    await asyncio.sleep(rng.uniform(0, 0.2))
                    spans.append((start, await redis_now(redis)))

        await asyncio.wait_for(asyncio.gather(*(task(s) for s in range(4))), timeout=60)
        await redis.aclose()
        return spans

    spans = asyncio.run(scenario())
    assert len(spans) == 16
    # P1: a job may start only when fewer than N other jobs ended within W before it (or still run): for any
    # request times a in job i and b in job j, all jobs whose span meets one window of W number at most N.
    for start, _ in spans:
        overlapping = [s for s in spans if s[1] > start - window and s[0] <= start]
        assert len(overlapping) <= n


def _required_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"HUNTAZE_WORKFLOWS_QUEUE_URL": "http://127.0.0.1:9/q", "HUNTAZE_RESULTS_BUCKET": "b",
                        "HUNTAZE_SITE_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(("text", "expected"), [("10/60s", (10, 60.0)), ("6/10", (6, 10.0)),
                                                ("5/500ms", (5, 0.5)), (" 6 / 10 s ", (6, 10.0)), (None, None)])
def test_platform_slot_limit_from_the_scraper_settings(text: str | None, expected: tuple[int, float] | None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _required_settings(monkeypatch)
    if text is None:
        monkeypatch.delenv("HUNTAZE_PLATFORM_LIMIT", raising=False)
    else:
        monkeypatch.setenv("HUNTAZE_PLATFORM_LIMIT", text)
    assert parse_limit(ScraperSettings().platform_limit) == expected


def test_platform_slot_bad_limit_is_a_settings_error_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _required_settings(monkeypatch)
    monkeypatch.setenv("HUNTAZE_PLATFORM_LIMIT", "ten per minute")
    with pytest.raises(ValueError, match="platform_limit"):
        ScraperSettings()


@pytest.mark.soak  # worker start-up on a loaded machine: about a minute
def test_platform_slot_three_workers_on_a_full_fifo_queue_keep_the_limit_at_the_standin(
    plane: Plane, standin: Any, scraper_env: dict[str, str], worker_processes: Any,
) -> None:
    """The scraper was down: the FIFO queue holds every admitted job. Three worker processes start at once and
    drain it; the stand-in's own arrival records show at most N sends in any W, each job sent once. (Without
    the platform slot the same run put all 9 sends within 1.3 s.)"""
    n, window_s, jobs = 3, 4.0, 9
    sent = [job("send_message", f"creator-{i % 3}", n=i, text=f"slot-{i:02d}") for i in range(jobs)]
    for item in sent:
        plane.send(item)
    env = {**scraper_env, "HUNTAZE_PLATFORM_LIMIT": f"{n}/{window_s:g}s"}
    workers = [worker_processes(env) for _ in range(3)]

    def arrivals() -> list[Any]:
        return [m for m in standin.state.messages() if m.text.startswith("slot-")]

    wait_for(lambda: len(arrivals()) >= jobs, 120, "every job to reach the stand-in")
    for worker in workers:
        worker.signal(signal.SIGTERM)
    times = sorted(m.received_at.timestamp() for m in arrivals())
    texts = [m.text for m in arrivals()]
    assert len(texts) == len(set(texts)) == jobs, "a send reached the platform twice, or not at all"
    busiest = max(sum(1 for t in times if start <= t < start + window_s) for start in times)
    print(f"stand-in arrivals: most in any {window_s:g} s = {busiest} (limit {n}), span {times[-1] - times[0]:.1f} s")
    assert busiest <= n
