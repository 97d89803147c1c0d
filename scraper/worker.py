"""The scraper worker loop (`python -m scraper`): long-poll the FIFO queue and run jobs through a site adapter.

Started by the ECS service ``huntaze-onlyfans-scraper`` (container ``playwright-scraper``) and, locally, by the
plane and the tests as a subprocess. One asyncio loop, one adapter (one browser for the browser adapter).

Receiving. Before each receive the shared circuit breaker is asked (`scraper.breaker`): while OPEN, or while
another task holds the HALF_OPEN probe, nothing is received; the half-open probe receives one message.
Otherwise up to ``HUNTAZE_BATCH_SIZE`` messages are long-polled (``HUNTAZE_WAIT_TIME_S``), but only while fewer
than ``HUNTAZE_CONCURRENCY`` message groups are running.

FIFO batches (ARCHITECTURE.md decision 6). A batch is split by MessageGroupId; each group runs in order in its
own task, at most ``HUNTAZE_CONCURRENCY`` jobs at once. When a job is released (not done), the group's later
messages from that batch are released too (visibility 0), not processed, so order holds. Successful deletes
are batched. A heartbeat extends the visibility of every held message while it is held (decision 9).

Dead letters. SQS redrive moves a message to the DLQ without saying why. So when a message that is on its last
allowed receive (ApproximateReceiveCount >= the queue's RedrivePolicy maxReceiveCount) fails again transiently,
the worker sends it to the DLQ itself, with ``error``, ``error_type`` and ``origin_message_id`` attributes, and
deletes it. Poison bodies (`common.contract.parse_job` fails) go there at once. So every job ends either with a
result in S3 or in the DLQ with a reason.

Shutdown (decision 8). On SIGTERM or SIGINT: stop receiving; jobs still running get until the shutdown budget
(``HUNTAZE_SHUTDOWN_BUDGET_S``, default 25 s, inside ECS's 30 s) minus a reserve, then are cut and released
(visibility 0); queued messages are released at once; deletes and metrics are flushed; the browser is closed;
the process exits 0. A receive still in flight is awaited while the budget allows and its messages released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
import uuid
from collections import defaultdict
from typing import Any

from redis.asyncio import Redis

from common.jsonlog import configure_logging
from common.settings import load_settings
from scraper.adapters.base import AdapterContext, SiteAdapter
from scraper.adapters.registry import load_adapter
from scraper.breaker import CircuitBreaker, Clock, system_clock
from scraper.budget import Shutdown
from scraper.consumer import DeleteBatcher, QueueClient, Received, VisibilityKeeper
from scraper.errors import ConfigError
from scraper.health import HealthServer
from scraper.idempotency import IdempotencyStore
from scraper.metrics import Metrics
from scraper.results import ResultStore
from scraper.runner import Disposition, JobRunner, Outcome
from scraper.secrets import SecretReader
from scraper.settings import ScraperSettings

log = logging.getLogger("scraper.worker")
SHUTDOWN_RESERVE_S = 3.0
IDLE_WAIT_S = 1.0
MAX_BREAKER_WAIT_S = 1.0


class Worker:
    """One worker process's loop. `adapter` and `clock` are seams for tests; by default both come from config."""

    def __init__(self, settings: ScraperSettings, adapter: SiteAdapter | None = None,
                 clock: Clock = system_clock) -> None:
        self.settings = settings
        self.owner = f"scraper-{uuid.uuid4().hex[:12]}"
        self.redis = Redis.from_url(settings.redis_url.get_secret_value())
        self.breaker = CircuitBreaker(
            self.redis, settings.breaker_name, threshold=settings.breaker_threshold,
            open_s=settings.breaker_open_s, probe_ttl_s=settings.job_deadline_s + 30, clock=clock,
        )
        self.queue = QueueClient(settings.workflows_queue_url, settings.workflows_dlq_url)
        self.metrics = Metrics(settings.metrics_namespace, {"Environment": settings.env})
        self.store = ResultStore(settings.results_bucket)
        self.adapter = adapter or load_adapter(settings.adapter, AdapterContext(settings, SecretReader()))
        self.shutdown = Shutdown()
        self.stopping = asyncio.Event()
        self.last_tick = time.monotonic()
        self.groups_running = 0
        self.jobs_finished = 0
        self.receives = 0
        self.breaker_waits = 0
        self.health = HealthServer(settings.health_host, settings.health_port, self.problems)
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._running: dict[str, float] = {}  # receipt handle -> monotonic start of the job running it
        self._group_tasks: set[asyncio.Task[None]] = set()
        self._pending_receive: asyncio.Future[list[Received]] | None = None
        self._background: list[asyncio.Task[None]] = []

    def problems(self) -> list[str]:
        found = []
        adapter_problem = self.adapter.problem()
        if adapter_problem:
            found.append(adapter_problem)
        now = time.monotonic()
        idle = now - self.last_tick
        if idle > self.settings.stuck_after_s:
            found.append(f"receive loop has not ticked for {idle:.0f}s")
        # A job ends by its deadline (its action runs under the budget); one running well past it is stuck on
        # something outside the budget (a hung Redis or S3 call, an adapter swallowing cancellation), and with
        # every slot stuck the loop still ticks but never receives again.
        oldest = min(self._running.values(), default=now)
        if now - oldest > self.settings.job_deadline_s + self.settings.stuck_after_s:
            found.append(f"a job has run for {now - oldest:.0f}s, past its {self.settings.job_deadline_s:g}s "
                         "deadline")
        return found

    def request_stop(self) -> None:
        if not self.stopping.is_set():
            log.info("stop requested; no more receives", extra={"budget_s": self.settings.shutdown_budget_s})
            self.stopping.set()
            self.shutdown.begin(max(self.settings.shutdown_budget_s - SHUTDOWN_RESERVE_S, 0.5))

    async def start(self) -> None:
        info = await self.queue.describe()
        await self.redis.ping()
        await self.adapter.start()
        await self.health.start()
        self.deleter = DeleteBatcher(self.queue)
        self.deleter.start()
        self.keeper = VisibilityKeeper(self.queue, self.settings.heartbeat_interval_s,
                                       extend_s=info.visibility_timeout_s,
                                       max_hold_s=self.settings.job_deadline_s * self.settings.batch_size)
        self.runner = JobRunner(self.settings, self.adapter, self.breaker, IdempotencyStore(self.redis, self.owner),
                                self.store, self.metrics, info, self.shutdown)
        self._background = [asyncio.create_task(self.keeper.run(), name="heartbeat"),
                            asyncio.create_task(self._flush_metrics(), name="metrics")]
        log.info("worker ready", extra={"health_port": self.health.port, "adapter": self.settings.adapter,
                                        "visibility_timeout_s": info.visibility_timeout_s,
                                        "max_receive_count": info.max_receive_count})

    async def run(self) -> int:
        await self.start()
        try:
            await self._loop()
        finally:
            await self._drain()
        return 0

    async def _flush_metrics(self) -> None:
        while True:
            await asyncio.sleep(self.settings.metrics_flush_s)
            await self.metrics.flush()

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

    async def _loop(self) -> None:
        while not self.stopping.is_set():
            self.last_tick = time.monotonic()
            if self.groups_running >= self.settings.concurrency:
                await self._sleep_unless_stopping(0.05)
                continue
            try:
                admission = await self.breaker.acquire()
            except Exception as exc:
                log.warning("breaker unavailable; retrying", extra={"error": str(exc)})
                await self._sleep_unless_stopping(IDLE_WAIT_S)
                continue
            if not admission.may_receive:
                self.breaker_waits += 1
                await self._sleep_unless_stopping(min(max(admission.wait_s, 0.05), MAX_BREAKER_WAIT_S))
                continue
            probe = admission.token if admission.permit == "probe" else ""
            messages = await self._receive(1 if probe else self.settings.batch_size)
            if probe and not messages:
                await self.breaker.record_neutral(probe)
            if messages:
                self._dispatch(messages, probe)

    async def _receive(self, count: int) -> list[Received]:
        future = self.queue.receive(count, self.settings.wait_time_s)
        self._pending_receive = future
        stop_wait: asyncio.Future[Any] = asyncio.ensure_future(self.stopping.wait())
        pending: set[asyncio.Future[Any]] = {future, stop_wait}
        try:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
        if not future.done():
            return []  # stopping: `_drain` waits for this receive and releases what it brings
        self._pending_receive = None
        try:
            messages = future.result()
        except Exception as exc:
            log.warning("receive failed; backing off", extra={"error": str(exc)})
            await self._sleep_unless_stopping(IDLE_WAIT_S)
            return []
        self.receives += 1
        if self.stopping.is_set():
            await self.queue.change_visibility(messages, 0)
            return []
        return messages

    def _dispatch(self, messages: list[Received], probe: str) -> None:
        groups: dict[str, list[Received]] = defaultdict(list)
        for message in messages:
            groups[message.group_id].append(message)
            self.keeper.hold(message)
        for group in groups.values():
            self.groups_running += 1  # counted now, not when the task starts, so the loop sees it at once
            task = asyncio.create_task(self._run_group(group, probe))
            probe = ""
            self._group_tasks.add(task)
            task.add_done_callback(self._group_tasks.discard)

    async def _run_group(self, messages: list[Received], probe: str) -> None:
        try:
            for index, message in enumerate(messages):
                if self.stopping.is_set():
                    await self._release(messages[index:], 0)
                    return
                async with self._slots:
                    self._running[message.receipt_handle] = time.monotonic()
                    try:
                        await self._cover(message)
                        outcome = await self.runner.run(message, probe=bool(probe))
                    finally:
                        del self._running[message.receipt_handle]
                if probe:
                    await self.breaker.record_neutral(probe)
                    probe = ""
                await self._apply(message, outcome)
                if outcome.disposition is Disposition.RELEASE:
                    await self._release(messages[index + 1 :], 0)
                    return
        except Exception:
            log.exception("group task failed; releasing its messages")
            await self._release([m for m in messages if m.receipt_handle in self.keeper.held], 0)
        finally:
            self.groups_running -= 1
            self.last_tick = time.monotonic()

    async def _cover(self, message: Received) -> None:
        """Before a job starts, make its message's visibility outlast the job's deadline (plus the margin)."""
        needed = self.settings.job_deadline_s + self.settings.visibility_margin_s
        if message.visible_until - time.monotonic() < needed:
            await self.queue.change_visibility([message], math.ceil(needed))

    async def _apply(self, message: Received, outcome: Outcome) -> None:
        self.jobs_finished += 1
        if outcome.disposition is Disposition.DELETE:
            self.keeper.drop(message)
            self.deleter.add(message)
        elif outcome.disposition is Disposition.RELEASE:
            await self._release([message], outcome.visibility_s)
        else:
            await self.queue.dead_letter(message, outcome.reason, outcome.error_type,
                                         outcome.dedup_key or message.message_id)
            self.keeper.drop(message)
            log.warning("dead-lettered", extra={"reason": outcome.reason, "error_type": outcome.error_type})

    async def _release(self, messages: list[Received], visibility_s: int) -> None:
        if not messages:
            return
        for message in messages:
            self.keeper.drop(message)
        await self.queue.change_visibility(messages, visibility_s)

    async def _drain(self) -> None:
        """Finish or release in-flight work within the shutdown budget, then close everything."""
        self.request_stop()
        deadline = time.monotonic() + max(self.settings.shutdown_budget_s - 1.0, 0.5)
        waits: set[asyncio.Future[Any]] = set(self._group_tasks)
        if self._pending_receive is not None:
            waits.add(self._pending_receive)
        if waits:
            await asyncio.wait(waits, timeout=max(deadline - time.monotonic(), 0.1))
        receive = self._pending_receive
        if receive is not None and receive.done() and not receive.exception():
            await self.queue.change_visibility(receive.result(), 0)
        for task in list(self._group_tasks):
            task.cancel()
        await asyncio.gather(*self._group_tasks, return_exceptions=True)
        await self.queue.change_visibility(list(self.keeper.held.values()), 0)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.deleter.close()
        await self.metrics.flush()
        await self.adapter.aclose()
        await self.health.close()
        await self.redis.aclose()
        log.info("worker stopped", extra={"jobs_finished": self.jobs_finished})


async def serve(settings: ScraperSettings) -> int:
    worker = Worker(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.request_stop)
    try:
        return await worker.run()
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        return 2


def main() -> int:
    try:
        settings = load_settings(ScraperSettings)
    except Exception as exc:
        configure_logging("scraper")
        log.error("invalid settings: %s", exc)
        return 2
    configure_logging("scraper", settings.log_level)
    return asyncio.run(serve(settings))
