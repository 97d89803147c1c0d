"""The health endpoint when the worker is stuck: the receive loop stalls, or a job hangs past its deadline.

Both stalls are real: the loop waits on a Redis server that is stopped (SIGSTOP), and a job waits in a site
adapter that ignores the runner's cancellation. /health is asked over HTTP while the worker runs in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from scraper_testkit import Plane, job

from scraper.adapters.base import AdapterContext, SiteAdapter, SiteSession
from scraper.adapters.registry import load_adapter
from scraper.secrets import SecretReader
from scraper.settings import ScraperSettings
from scraper.worker import Worker

Health = tuple[int, list[str]]


async def _health(worker: Worker) -> Health:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{worker.health.port}/health", timeout=5)
    return response.status_code, list(response.json()["problems"])


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.1)


async def _health_becomes(worker: Worker, status: int, problem: str, timeout_s: float) -> Health:
    seen: list[Health] = []

    async def check() -> bool:
        seen.append(await _health(worker))
        return seen[-1][0] == status and any(problem in text for text in seen[-1][1]) == bool(problem)

    await _until(check, timeout_s, f"/health to answer {status} {problem!r} (last: {seen[-1:]})")
    return seen[-1]


@contextlib.asynccontextmanager
async def _running(worker: Worker) -> AsyncIterator[asyncio.Task[int]]:
    task = asyncio.create_task(worker.run())
    try:
        await _until(lambda: _started(worker, task), 30, "the worker to start")
        yield task
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, timeout=60)


async def _started(worker: Worker, task: asyncio.Task[int]) -> bool:
    if task.done():
        task.result()
        pytest.fail("the worker stopped while starting")
    return hasattr(worker, "runner") and worker.health.port != 0


def test_health_receive_loop_stalled_on_redis_reports_503_then_recovers(
        plane: Plane, standin: Any, make_settings: Any, redis_factory: Any) -> None:
    redis = redis_factory()
    settings = make_settings(redis_url=redis.url, stuck_after_s=3, wait_time_s=1)

    async def scenario() -> None:
        worker = Worker(settings)
        async with _running(worker):
            assert await _health_becomes(worker, 200, "", 10) == (200, [])
            os.kill(redis.proc.pid, signal.SIGSTOP)  # the loop's next breaker call waits on Redis forever
            try:
                _, problems = await _health_becomes(worker, 503, "receive loop has not ticked", 30)
                assert problems == [p for p in problems if "receive loop has not ticked for" in p]
            finally:
                os.kill(redis.proc.pid, signal.SIGCONT)
            await _health_becomes(worker, 200, "", 30)
            plane.send(job("get_messages", "afterstall"))
            await _until(lambda: asyncio.to_thread(lambda: plane.result_keys() != []), 30, "a job after the stall")

    asyncio.run(scenario())


class WedgingAdapter:
    """The http adapter, except that a session for creator ``wedged`` waits for `release`, ignoring cancellation
    (a misbehaving third-party adapter): the job outlives its deadline and holds its slot."""

    name = "wedging"

    def __init__(self, inner: SiteAdapter) -> None:
        self.inner = inner
        self.release = asyncio.Event()

    async def start(self) -> None:
        await self.inner.start()

    def problem(self) -> str | None:
        return self.inner.problem()

    async def aclose(self) -> None:
        await self.inner.aclose()

    @contextlib.asynccontextmanager
    async def session(self, creator_id: str, timeout_s: float) -> AsyncIterator[SiteSession]:
        while creator_id == "wedged" and not self.release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await self.release.wait()
        async with self.inner.session(creator_id, timeout_s) as session:
            yield session


def test_health_job_stuck_past_deadline_reports_503_then_recovers(
        plane: Plane, standin: Any, make_settings: Any) -> None:
    settings: ScraperSettings = make_settings(concurrency=1, job_deadline_s=2, stuck_after_s=1,
                                              action_timeout_s=1)

    async def scenario() -> None:
        adapter = WedgingAdapter(load_adapter("http", AdapterContext(settings, SecretReader())))
        worker = Worker(settings, adapter=adapter)
        async with _running(worker):
            plane.send(job("get_messages", "wedged"))
            _, problems = await _health_becomes(worker, 503, "past its 2s deadline", 30)
            # The loop itself still ticks (it waits for the only slot); only the job check sees the stall.
            assert [p for p in problems if "a job has run for" in p] == problems
            adapter.release.set()
            await _health_becomes(worker, 200, "", 30)
            await _until(lambda: asyncio.to_thread(lambda: plane.counts() == (0, 0)), 30, "the job to finish")

    asyncio.run(scenario())
