"""The scraper worker loop (`python -m scraper`): long-poll the FIFO queue and run jobs through a site adapter.

Started by the ECS service ``huntaze-onlyfans-scraper`` (container ``playwright-scraper``) and, locally, by the
plane and the tests as a subprocess. One asyncio loop, one adapter (one browser for the browser adapter).

Receiving. Before each receive the shared circuit breaker is peeked (`scraper.breaker`): while OPEN nothing is
received; while HALF_OPEN only an idle worker receives (one message, to become the probe). Otherwise up to
``HUNTAZE_BATCH_SIZE`` messages are long-polled (``HUNTAZE_WAIT_TIME_S``), while fewer than
``HUNTAZE_CONCURRENCY`` message groups are held.

FIFO batches (ARCHITECTURE.md decision 6). A batch is split by MessageGroupId; each group runs in order in its
own task, at most ``HUNTAZE_CONCURRENCY`` jobs at once. Successful deletes are batched.

The receive budget (maxReceiveCount) is spent only by deliveries, never by waiting. When a job must wait
(`scraper.runner` answers WAIT: breaker open, Retry-After, a platform slot, a failed round, our own Redis or S3
down), the worker keeps holding its message and the group's later ones, the heartbeat extends their
visibility (decision 9), and the job runs again after the wait. A message is given back to SQS only at
shutdown or when a group task dies; then any message on its last allowed receive (ApproximateReceiveCount >=
maxReceiveCount), and the group's messages before it so that order holds, is dead-lettered by the worker with a
reason instead, because SQS redrive would move it without one. SIGKILL cannot be caught: a message on its last
receive whose worker is killed reaches the DLQ through redrive, without a reason (docs/architecture.md, "Job
outcomes").

Dead letters carry ``error``, ``error_type``, ``origin_message_id`` and ``receive_count`` attributes, and a
job in the DLQ has no result in S3. So every job ends in exactly one of (a stored result) or (the DLQ with a
reason); after a redrive it runs again and ends again.

Shutdown (decision 8). On SIGTERM or SIGINT: stop receiving; jobs still running get until the shutdown budget
(``HUNTAZE_SHUTDOWN_BUDGET_S``, default 25 s, inside ECS's 30 s) minus a reserve, then are cut; held messages
are given back (visibility 0, or the DLQ with a reason on their last receive); deletes and metrics are
flushed; the browser is closed; the process exits 0 without waiting for abandoned threads (a receive's long
poll) to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable
from typing import Any, TypeVar

from redis.asyncio import Redis

from common.aws import client
from common.jsonlog import bind, configure_logging
from common.settings import load_settings
from scraper import platform_slot
from scraper.adapters.base import AdapterContext, SiteAdapter
from scraper.adapters.registry import load_adapter
from scraper.breaker import BreakerState, CircuitBreaker, Clock, system_clock
from scraper.budget import Shutdown
from scraper.consumer import DeleteBatcher, QueueClient, Received, VisibilityKeeper
from scraper.errors import ConfigError
from scraper.health import HealthServer
from scraper.idempotency import IdempotencyStore
from scraper.joblog import job_ended
from scraper.metrics import Metrics
from scraper.results import ResultStore
from scraper.runner import Disposition, JobRunner, Outcome
from scraper.secrets import SecretReader
from scraper.settings import ScraperSettings

log = logging.getLogger("scraper.worker")
T = TypeVar("T")
SHUTDOWN_RESERVE_S = 3.0  # running jobs are cut this long before the budget ends
CUT_GRACE_S = 2.0  # cut jobs' group tasks must have unwound this long before it ends
EXIT_MARGIN_S = 0.5
IDLE_WAIT_S = 1.0
MAX_BREAKER_WAIT_S = 1.0
MAX_HOLD_S = 11 * 3600.0  # SQS caps a message's visibility at 12 h from its receive
# A finished job's delete waits this long for the next ones to share its DeleteMessageBatch call: each call costs
# the worker ~10 ms of CPU in botocore, and a creator's jobs finish a fraction of a second apart. Safe to delay:
# the result is stored and marked, so a message that comes back before its delete is deleted as already done.
DELETE_LINGER_S = 0.5


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
        self.jobs_waiting = 0  # WAIT outcomes: a held job ran again later instead of spending a receive
        self.dead_lettered = 0
        self.messages_received = 0  # deliveries: each one spends a receive of that message's budget
        self.health = HealthServer(settings.health_host, settings.health_port, self.problems, self.warnings,
                                   self.stats)
        self._slots = asyncio.Semaphore(settings.concurrency)
        self.platform = platform_slot.from_settings(
            self.redis, settings.platform_limit, settings.platform_limit_name,
            hold_s=settings.job_deadline_s + settings.visibility_margin_s,
            heartbeat_every_s=settings.heartbeat_interval_s)
        self._running: dict[str, float] = {}  # receipt handle -> monotonic start of the job running it
        self._group_tasks: set[asyncio.Task[None]] = set()
        self._pending_receive: asyncio.Future[list[Received]] | None = None
        self._background: list[asyncio.Task[None]] = []
        self._stop_at: float | None = None
        self._group_ended = asyncio.Event()

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

    def stats(self) -> dict[str, int]:
        """Counters for /health (and the benchmark): jobs, receives, and the adapter's own (browser contexts)."""
        found = {"jobs_finished": self.jobs_finished, "receives": self.receives,
                 "messages_received": self.messages_received, "jobs_waiting": self.jobs_waiting,
                 "dead_lettered": self.dead_lettered}
        adapter_stats = getattr(self.adapter, "stats", None)  # optional in the adapter interface
        if callable(adapter_stats):
            found.update(adapter_stats())
        return found

    def warnings(self) -> list[str]:
        warning = getattr(self.adapter, "warning", None)  # optional in the adapter interface
        found = warning() if callable(warning) else None
        return [str(found)] if found else []

    def request_stop(self) -> None:
        if not self.stopping.is_set():
            log.info("stop requested; no more receives", extra={"budget_s": self.settings.shutdown_budget_s})
            self.stopping.set()
            self._group_ended.set()
            self._stop_at = time.monotonic()
            self.shutdown.begin(max(self.settings.shutdown_budget_s - SHUTDOWN_RESERVE_S, 0.5))

    async def start(self) -> None:
        # Independent start-up steps run together: the browser launches while SQS and Redis answer and the AWS
        # clients of the first job's path (S3 for its result, CloudWatch) are built (each parses its service model).
        began = time.monotonic()
        took: dict[str, float] = {}

        async def timed(name: str, step: Awaitable[T]) -> T:
            result = await step
            took[name] = round(time.monotonic() - began, 2)
            return result

        info, _, _, _ = await asyncio.gather(
            timed("queue", self.queue.describe()), timed("redis", self.redis.ping()),
            timed("adapter", self.adapter.start()),
            timed("clients", asyncio.to_thread(lambda: [client(name) for name in ("s3", "cloudwatch")])))
        await self.health.start()
        self.deleter = DeleteBatcher(self.queue, DELETE_LINGER_S)
        self.deleter.start()
        self.keeper = VisibilityKeeper(self.queue, self.settings.heartbeat_interval_s,
                                       extend_s=info.visibility_timeout_s, is_stuck=self._stuck)
        self.runner = JobRunner(self.settings, self.adapter, self.breaker, IdempotencyStore(self.redis, self.owner),
                                self.store, self.metrics, info, self.shutdown)
        self._background = [asyncio.create_task(self.keeper.run(), name="heartbeat"),
                            asyncio.create_task(self._flush_metrics(), name="metrics")]
        log.info("worker ready", extra={"health_port": self.health.port, "adapter": self.settings.adapter,
                                        "visibility_timeout_s": info.visibility_timeout_s,
                                        "max_receive_count": info.max_receive_count, "start_s": took})

    def _stuck(self, message: Received) -> bool:
        """A job running far past its deadline: its message is let go so another task can take it over."""
        began = self._running.get(message.receipt_handle)
        return began is not None and \
            time.monotonic() - began > self.settings.job_deadline_s + self.settings.stuck_after_s

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

    async def _may_receive(self) -> int:
        """How many messages to receive now: 0 while the breaker is open (or half-open and we are busy)."""
        state, left_s = await self.breaker.state()
        if state is BreakerState.CLOSED:
            return self.settings.batch_size
        if state is BreakerState.HALF_OPEN and self.groups_running == 0:
            return 1  # become the probe (the runner acquires it right before acting)
        self.breaker_waits += 1
        await self._sleep_unless_stopping(min(max(left_s, 0.05), MAX_BREAKER_WAIT_S))
        return 0

    async def _loop(self) -> None:
        while not self.stopping.is_set():
            self.last_tick = time.monotonic()
            if self.groups_running >= self.settings.concurrency:
                self._group_ended.clear()
                with contextlib.suppress(TimeoutError):  # woken by a group's end (or stop); ticks for /health
                    await asyncio.wait_for(self._group_ended.wait(), timeout=IDLE_WAIT_S)
                continue
            try:
                count = await self._may_receive()
            except Exception as exc:
                log.warning("breaker unavailable; retrying", extra={"error": str(exc)})
                await self._sleep_unless_stopping(IDLE_WAIT_S)
                continue
            if count:
                messages = await self._receive(count)
                if messages:
                    self._dispatch(messages)

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
            return []  # stopping: `_drain` waits for this receive and gives back what it brings
        self._pending_receive = None
        try:
            messages = future.result()
        except Exception as exc:
            log.warning("receive failed; backing off", extra={"error": str(exc)})
            await self._sleep_unless_stopping(IDLE_WAIT_S)
            return []
        self.receives += 1
        self.messages_received += len(messages)
        if self.stopping.is_set():
            await self._give_back(messages, "received while the worker was stopping")
            return []
        return messages

    def _dispatch(self, messages: list[Received]) -> None:
        groups: dict[str, list[Received]] = defaultdict(list)
        for message in messages:
            groups[message.group_id].append(message)
            self.keeper.hold(message)
        for group in groups.values():
            self.groups_running += 1  # counted now, not when the task starts, so the loop sees it at once
            task = asyncio.create_task(self._run_group(group))
            self._group_tasks.add(task)
            task.add_done_callback(self._group_tasks.discard)

    async def _run_group(self, messages: list[Received]) -> None:
        """Run a group's messages in order, keeping its slot from one job to the next, so that a creator's
        consecutive jobs really run back to back (and share the creator's pooled browser context). A job that
        must wait gives the slot up while it waits and holds its group's later messages (no receive spent)."""
        index = 0
        holding = False
        try:
            while index < len(messages):
                if not holding and not self.stopping.is_set():
                    await self._slots.acquire()
                    holding = True
                if self.stopping.is_set():  # also after waiting for a slot while the worker was told to stop
                    await self._give_back(messages[index:], "the worker shut down before the job ended")
                    return
                message = messages[index]
                self._running[message.receipt_handle] = time.monotonic()
                try:
                    async with self._platform_slot(message):  # invariant P1 (scraper.platform_slot)
                        await self._cover(message)
                        outcome = await self.runner.run(message)
                finally:
                    del self._running[message.receipt_handle]
                if outcome.disposition is Disposition.WAIT:
                    self._slots.release()
                    holding = False
                    self.jobs_waiting += 1
                    if time.monotonic() - message.received_at > MAX_HOLD_S:
                        await self._give_back(messages[index:], f"held {MAX_HOLD_S / 3600:g} h, near SQS's "
                                              "12 h visibility limit")
                        return
                    await self._sleep_unless_stopping(outcome.wait_s)
                    continue
                await self._apply(message, outcome)
                index += 1
        except Exception as exc:
            log.exception("group task failed; giving its messages back")
            await self._give_back([m for m in messages[index:] if m.receipt_handle in self.keeper.held],
                                  f"worker error: {type(exc).__name__}: {exc}")
        finally:
            if holding:
                self._slots.release()
            await self._end_run(messages[0].group_id)
            self.groups_running -= 1
            self.last_tick = time.monotonic()
            self._group_ended.set()

    def _platform_slot(self, message: Received) -> contextlib.AbstractAsyncContextManager[None]:
        """Wait for a platform slot (heartbeating the message, spending no receive), held while the job runs."""
        if self.platform is None:
            return contextlib.nullcontext()
        extend_s = math.ceil(self.settings.job_deadline_s + self.settings.visibility_margin_s)
        return self.platform.hold(lambda: self.queue.change_visibility([message], extend_s))

    async def _end_run(self, group_id: str) -> None:
        """Tell the adapter a creator's consecutive jobs are done (the gate sets MessageGroupId = creator_id), so
        the browser adapter frees the creator's pooled context. Optional in the adapter interface."""
        end_run = getattr(self.adapter, "end_run", None)
        if callable(end_run) and not self.stopping.is_set():  # stopping: the browser closes as a whole
            try:
                await end_run(group_id)
            except Exception as exc:
                log.warning("ending the creator's run failed", extra={"error": str(exc)})

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
        else:
            await self._dead_letter(message, outcome.reason, outcome.error_type,
                                    outcome.dedup_key or message.message_id)

    async def _dead_letter(self, message: Received, reason: str, error_type: str, dedup_key: str) -> None:
        """The DLQ with a reason; the job's one job-end line (`scraper.joblog`)."""
        await self.queue.dead_letter(message, reason, error_type, dedup_key)
        self.keeper.drop(message)
        self.dead_lettered += 1
        creator, action = job_labels(message)
        with bind(creator_id=creator, action=action, message_id=message.origin_message_id,
                  receive_count=message.receive_count):
            job_ended(log, "dead-lettered", "failure", (time.monotonic() - message.received_at) * 1000,
                      error_type=error_type or "unknown", error_message=reason)

    async def _give_back(self, messages: list[Received], reason: str) -> None:
        """Hand held messages back to SQS (visibility 0). A message on its last allowed receive would reach the DLQ
        through redrive without a reason, so it (and, for order, the group's messages before it) is
        dead-lettered here with `reason`; the rest are released."""
        limit = self.queue.info.max_receive_count
        by_group: dict[str, list[Received]] = defaultdict(list)
        for message in messages:
            by_group[message.group_id].append(message)
        release: list[Received] = []
        for group in by_group.values():
            last = max((i for i, m in enumerate(group) if m.last_receive(limit)), default=-1)
            for message in group[: last + 1]:
                try:
                    await self._dead_letter(
                        message, f"{reason}, on its last allowed receive ({message.receive_count} of {limit}); "
                        "redrive it to run it again", "unknown", f"{message.message_id}:{message.receive_count}")
                except Exception as exc:
                    log.error("could not dead-letter a message on its last receive", extra={"error": str(exc)})
                    release.append(message)
            release.extend(group[last + 1 :])
        for message in release:
            self.keeper.drop(message)
        if release:
            await self.queue.change_visibility(release, 0)

    async def _drain(self) -> None:
        """Finish or give back in-flight work within the shutdown budget, then close everything.

        Measured from the stop request: running jobs are cut at budget - SHUTDOWN_RESERVE_S (`Shutdown`); their
        group tasks get until budget - CUT_GRACE_S to unwind; the queue work that decides outcomes (give back,
        dead-letter, deletes) always runs; the rest (metrics, browser close) is bounded by what is left of the
        budget: a browser still closing when it runs out dies with the Playwright driver when the process exits."""
        self.request_stop()
        assert self._stop_at is not None
        hard_end = self._stop_at + self.settings.shutdown_budget_s - EXIT_MARGIN_S
        waits: set[asyncio.Future[Any]] = set(self._group_tasks)
        if self._pending_receive is not None:
            waits.add(self._pending_receive)
        if waits:
            until = self._stop_at + self.settings.shutdown_budget_s - CUT_GRACE_S
            await asyncio.wait(waits, timeout=max(until - time.monotonic(), 0.1))
        receive = self._pending_receive
        if receive is not None and receive.done() and not receive.exception():
            for message in receive.result():
                self.keeper.hold(message)
        for task in list(self._group_tasks):
            task.cancel()
        await asyncio.gather(*self._group_tasks, return_exceptions=True)
        await self._give_back(list(self.keeper.held.values()), "the worker shut down before the job ended")
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.deleter.close()
        for step, what in ((self.metrics.flush, "metrics flush"), (self.adapter.aclose, "browser close"),
                           (self.health.close, "health server close"), (self.redis.aclose, "redis close")):
            left = hard_end - time.monotonic()
            try:
                await asyncio.wait_for(step(), timeout=max(left, 0.05))
            except Exception as exc:
                log.warning("shutdown step cut by the budget", extra={"step": what, "error": repr(exc)})
        log.info("worker stopped", extra={"jobs_finished": self.jobs_finished,
                                          "stop_s": round(time.monotonic() - self._stop_at, 2)})


def job_labels(message: Received) -> tuple[str, str]:
    """creator_id and action of a message for its log line, also when its body is not a valid job."""
    try:
        body = json.loads(message.body)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return message.group_id or "unknown", "unknown"
    return str(body.get("creator_id") or message.group_id or "unknown"), str(body.get("action") or "unknown")


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
    code = asyncio.run(serve(settings))
    exit_now(code)
    return code  # not reached


def exit_now(code: int) -> None:
    """End the process as soon as the worker has stopped. By then every queue message is deleted, given back or
    dead-lettered, metrics are flushed and the browser is closed; what is left is interpreter finalization (module
    teardown, garbage collection of the whole heap, abandoned threads), measured at 0.7-1.7 s idle and several
    seconds under load. That was the gap between "worker stopped" and the exit, so it is skipped."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
