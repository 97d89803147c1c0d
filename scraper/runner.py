"""Runs one received message to an `Outcome`: parse, gate (idempotency, platform permit), attempts, result.

Called by `scraper.worker` for each message of a group, in order. The worker applies the outcome:

- ``DELETE``: the job ended with a stored result (success, or a final 4xx failure), or it already ran (a
  redelivery whose result is stored).
- ``WAIT``: the job has not ended; the worker keeps holding the message (the heartbeat extends its visibility,
  so no SQS receive is spent) and runs it again after ``wait_s``. Waiting covers the circuit breaker being open
  or its half-open probe being taken, a 429's Retry-After, a platform slot, our own infrastructure (Redis, S3)
  failing, a send running elsewhere, and transient platform failures (5xx, crash, timeout) between rounds.
- ``DEAD_LETTER``: poison (the body breaks the contract), an outcome that cannot be verified, or a job whose
  platform failures used up its rounds; the worker copies it to the DLQ with ``error``/``error_type``.

A round is one run of a job's attempts (`scraper.policy` retries inside a round). Only rounds that failed at
the platform count (5xx, crash, a timeout not caused by local overload); 429s and every kind of waiting never
count, so a storm of any length dead-letters no valid job. A job gives up after ``max_rounds`` counted rounds
(the queue's maxReceiveCount unless ``HUNTAZE_MAX_ROUNDS`` is set), or twice that many timeouts under local
overload. No result is written for a job that goes to the DLQ: a result means the job ended.

Once only, without trusting Redis. Redis holds the idempotency marks (`scraper.idempotency`), but it may restart
empty while jobs are held or queued, so a missing mark never means "not done" by itself. The durable records
decide: before acting, a job whose Redis mark is not ``done`` has its result key in S3 checked once per delivery
(one HEAD; the key is stable per job, `scraper.results.result_key`): a stored result means the job ended, and the
message is deleted without acting. A send_message whose claim is fresh (no record) still asks the platform for
its client_ref before sending (`Admitted.verify`) when an earlier attempt may have acted: this delivery sent
before and Redis did not keep what came of it (``Received.send_in_doubt``), or the message was delivered
before (``receive_count`` > 1). A result this worker stored is remembered on the message, so a failed
Redis mark after it never runs the job again. Two runs never act at once: a worker stops acting before its
message's visibility ends (`scraper.budget`), and after a restart the fresh Redis lease serializes again.

`JobRunner._before_platform` is the single place where "about to act on the platform" happens: every gate that
may make a job wait (the breaker today, a platform slot) goes there, and returns a WAIT instead of blocking.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from tenacity import AsyncRetrying

from common.contract import (
    Action,
    ContractError,
    ErrorType,
    Job,
    ResultError,
    ResultMetrics,
    ResultResponse,
    ScraperResultData,
    parse_job,
)
from common.identity import message_identity
from common.jsonlog import bind
from scraper.adapters.base import ActionOutput, SiteAdapter, SiteSession
from scraper.breaker import CircuitBreaker, Permit
from scraper.budget import Budget, Shutdown
from scraper.consumer import QueueInfo, Received
from scraper.errors import (
    ActionTimeout,
    OutcomeUnknown,
    ScraperError,
    TargetClientError,
    TargetRateLimited,
    TargetServerError,
)
from scraper.idempotency import Claim, IdempotencyStore
from scraper.joblog import job_ended
from scraper.metrics import Metrics
from scraper.overload import LoadProbe
from scraper.policy import RetryPlan
from scraper.results import MediaSink, ResultStore, result_key
from scraper.settings import ScraperSettings

log = logging.getLogger(__name__)
INFRA_BACKOFF_S = 5.0
PROBE_BUSY_WAIT_S = 1.0
MAX_BREAKER_WAIT_S = 1.0  # re-check an open breaker at least this often (another task may close it)
ROUND_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)


class Disposition(StrEnum):
    DELETE = "delete"
    WAIT = "wait"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class Outcome:
    disposition: Disposition
    wait_s: float = 0.0
    reason: str = ""
    error_type: str = ""
    success: bool = False
    duplicate: bool = False
    dedup_key: str = ""


@dataclass(frozen=True)
class Admitted:
    verify: bool = False  # an earlier attempt ended without saying whether its send landed


@dataclass
class JobContext:
    message: Received
    job: Job
    identity: str
    budget: Budget
    started: float
    probe: str = ""  # the breaker's half-open probe token, while this job holds it
    verify: bool = False
    scraping_ms: int = 0
    # Awaited when this run of the job ends, however it ends: what `_before_platform` took (a platform slot).
    on_end: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def client_ref(identity: str) -> str:
    """The reference every send carries, derived from the message identity: the same for every attempt and
    redelivery of a job, so after an interrupted send `SiteSession.find_sent` finds exactly that job's message."""
    return hashlib.sha256(identity.encode()).hexdigest()[:40]


def wait(seconds: float, reason: str) -> Outcome:
    return Outcome(Disposition.WAIT, wait_s=max(seconds, 0.05), reason=reason)


class JobRunner:
    def __init__(  # noqa: PLR0917 - the runner's collaborators, each one a seam
        self,
        settings: ScraperSettings,
        adapter: SiteAdapter,
        breaker: CircuitBreaker,
        idempotency: IdempotencyStore,
        store: ResultStore,
        metrics: Metrics,
        queue_info: QueueInfo,
        shutdown: Shutdown,
        load: LoadProbe | None = None,
    ) -> None:
        self.settings = settings
        self.adapter = adapter
        self.breaker = breaker
        self.idempotency = idempotency
        self.store = store
        self.metrics = metrics
        self.queue_info = queue_info
        self.shutdown = shutdown
        self.load = load or LoadProbe(settings.cgroup_dir, settings.overload_pressure_pct)
        self.max_rounds = settings.max_rounds or queue_info.max_receive_count or 3

    async def run(self, message: Received) -> Outcome:
        started = time.monotonic()
        try:
            job = parse_job(message.body)
        except ContractError as exc:
            log.warning("poison message", extra={"message_id": message.message_id, "error": exc.summary()})
            return Outcome(Disposition.DEAD_LETTER, reason=f"invalid job: {exc.summary()}",
                           error_type=ErrorType.VALIDATION.value, dedup_key=message.message_id)
        identity = message_identity(job, message.origin_message_id)
        budget = Budget(message, self.settings.job_deadline_s, self.settings.visibility_margin_s, self.shutdown)
        ctx = JobContext(message, job, identity, budget, started)
        with bind(creator_id=job.creator_id, action=job.action.value,
                  message_id=message.origin_message_id, receive_count=message.receive_count):
            try:
                return await self._run_parsed(ctx)
            except Exception as exc:  # our infrastructure (Redis, S3): back off and hold, never lose the job
                log.exception("infrastructure failure; holding the message")
                return wait(INFRA_BACKOFF_S, f"infrastructure failure: {type(exc).__name__}: {exc}")
            finally:
                if ctx.probe:  # the probe ended without saying anything about the platform
                    with contextlib.suppress(Exception):
                        await self.breaker.record_neutral(ctx.probe)
                for release in ctx.on_end:
                    try:
                        await release()
                    except Exception:
                        log.exception("releasing what the job took before acting failed")

    async def _run_parsed(self, ctx: JobContext) -> Outcome:
        admitted = await self._admit(ctx)
        if isinstance(admitted, Outcome):
            return admitted
        ctx.verify = admitted.verify
        try:
            output = await self._attempts(ctx, admitted)
        except ScraperError as error:
            return await self._failed(ctx, error)
        return await self._succeeded(ctx, output)

    async def _before_platform(self, ctx: JobContext) -> Outcome | None:
        """THE place where the job is about to act on the platform: every gate that can make it wait goes here
        and answers a WAIT (the worker holds the message; no receive is spent), or None to go ahead. A gate that
        grants something held for the job's run (a platform slot) appends its release to ``ctx.on_end``.
        Never block here: waiting inside would hold the worker's concurrency slot; answer a WAIT instead."""
        admission = await self.breaker.acquire()
        if admission.permit is Permit.OPEN:
            return wait(min(max(admission.wait_s, 0.05), MAX_BREAKER_WAIT_S), "circuit breaker open")
        if admission.permit is Permit.BUSY:
            return wait(PROBE_BUSY_WAIT_S, "circuit breaker half-open; another job is the probe")
        if admission.permit is Permit.PROBE:
            ctx.probe = admission.token
            log.info("running as the half-open probe")
        return None

    async def _admit(self, ctx: JobContext) -> Outcome | Admitted:
        """Idempotency and platform gates; an Outcome means: do not run now."""
        message = ctx.message
        if message.stored_result:  # this worker stored the job's result; only its Redis mark failed
            await self._mark_done_if_possible(ctx, message.stored_result)
            return self._duplicate(message.stored_result)
        found = await self.idempotency.lookup(ctx.identity)
        if found.claim is Claim.DONE:
            return self._duplicate(found.result_key)
        if not message.result_checked:  # Redis may have lost the mark: the stored result is the durable one
            key = result_key(ctx.job, message.origin_message_id)
            if await self.store.has_result(key):
                await self._mark_done_if_possible(ctx, key)
                return self._duplicate(key)
            message.result_checked = True
        held = await self._before_platform(ctx)
        if held is not None:
            return held
        if ctx.job.action is not Action.SEND_MESSAGE:
            return Admitted()
        # The worker keeps the message invisible this long (see Worker._cover); a redelivery after it verifies.
        lease_s = self.settings.job_deadline_s + self.settings.visibility_margin_s
        claim = await self.idempotency.claim(ctx.identity, lease_s)
        if claim.claim is Claim.DONE:
            return self._duplicate(claim.result_key)
        if claim.claim is Claim.BUSY:
            log.info("job is running elsewhere; waiting for its lease", extra={"wait_s": claim.wait_s})
            return wait(max(1.0, claim.wait_s), "running elsewhere")
        # A fresh claim only says Redis holds no record, not that no earlier attempt acted (Redis may have
        # restarted empty): ask the platform first if one may have.
        earlier = message.send_in_doubt or message.receive_count > 1
        return Admitted(verify=claim.claim is Claim.VERIFY or (claim.claim is Claim.CLAIMED and earlier))

    async def _mark_done_if_possible(self, ctx: JobContext, key: str) -> None:
        """Put the Redis mark back (it saves the next redelivery its S3 read); the stored result decides anyway."""
        try:
            await self.idempotency.mark_done(ctx.identity, key)
        except Exception as exc:
            log.warning("could not mark the done job in Redis", extra={"error": str(exc)})

    def _duplicate(self, result_key: str) -> Outcome:
        log.info("job already done; deleting the redelivery", extra={"result_key": result_key})
        return Outcome(Disposition.DELETE, duplicate=True, reason="already done")

    async def _attempts(self, ctx: JobContext, admitted: Admitted) -> ActionOutput:
        plan = RetryPlan(ctx.budget, self.settings.action_timeout_s, self.settings.retry_base_s,
                         stretch=self.load.stretch)
        began = time.monotonic()
        try:
            async with ctx.budget.scope():
                if admitted.verify:
                    found = await self._attempt(ctx, plan.attempt_timeout(), verify=True)
                    if found is not None:
                        return found
                    ctx.verify = False  # the platform shows no earlier send: sending is safe
                    ctx.message.send_in_doubt = False
                retrying = AsyncRetrying(retry=plan.retry, wait=plan.wait, reraise=True)
                async for attempt in retrying:
                    with attempt:
                        output = await self._attempt(ctx, plan.attempt_timeout())
                assert output is not None
                return output
        except TimeoutError:
            raise ActionTimeout("the job's budget ran out (deadline, visibility or shutdown)") from None
        except ScraperError:
            raise
        except Exception as exc:
            error = ScraperError(f"unexpected {type(exc).__name__}: {exc}")
            error.ambiguous = True
            raise error from exc
        finally:
            ctx.scraping_ms = int((time.monotonic() - began) * 1000)
            if plan.log:
                log.info("attempts", extra={"attempts": plan.log})

    async def _attempt(self, ctx: JobContext, timeout_s: float, verify: bool = False) -> ActionOutput | None:
        """One attempt in the creator's session; with `verify`, only look for the send of an interrupted one."""
        if timeout_s <= 0:
            raise ActionTimeout("no budget left for another attempt")
        try:
            async with asyncio.timeout(timeout_s) as scope:
                async with self.adapter.session(ctx.job.creator_id, timeout_s) as session:
                    if verify:
                        return await session.find_sent(ctx.job, client_ref(ctx.identity))
                    if ctx.job.action is Action.SEND_MESSAGE and ctx.message.send_in_doubt:
                        # A retry after an attempt that may have landed (a timeout mid-send): look before sending.
                        found = await session.find_sent(ctx.job, client_ref(ctx.identity))
                        if found is not None:
                            return found
                        ctx.message.send_in_doubt = False
                    return await self._dispatch(session, ctx)
        except TimeoutError:
            if scope.expired():
                raise ActionTimeout(f"attempt timed out after {timeout_s:.1f}s") from None
            raise

    async def _dispatch(self, session: SiteSession, ctx: JobContext) -> ActionOutput:
        job = ctx.job
        if job.action is Action.SEND_MESSAGE:
            ctx.message.send_in_doubt = True  # until the answer says the platform was not touched
            try:
                return await session.send_message(job, client_ref(ctx.identity))
            except ScraperError as error:
                if not error.ambiguous:  # answered (429, 5xx, 4xx) or refused before sending
                    ctx.message.send_in_doubt = False
                raise
        if job.action is Action.SCRAPE_PROFILE:
            return await session.scrape_profile(job)
        if job.action is Action.GET_MESSAGES:
            return await session.get_messages(job)
        sink = MediaSink(self.store, job, ctx.message.origin_message_id)
        return await session.download_media(job, sink)

    def _result(self, ctx: JobContext, status: str, output: ActionOutput | None,
                error: ScraperError | None) -> ScraperResultData:
        now = time.monotonic()
        received_wall = time.time() - (now - ctx.message.received_at)
        queue_wait = max(0, int(received_wall * 1000) - ctx.message.sent_timestamp_ms) \
            if ctx.message.sent_timestamp_ms else 0
        total_ms = int((now - ctx.started) * 1000)
        return ScraperResultData(
            message_id=ctx.message.origin_message_id,
            creator_id=ctx.job.creator_id,
            action=ctx.job.action,
            status=status,
            timestamp=datetime.now(UTC),
            duration_ms=total_ms,
            response=None if output is None else ResultResponse(status_code=output.status_code,
                                                                data=output.data),
            error=None if error is None else ResultError(
                type=error.error_type, message=str(error)[:2000],
                stack="".join(traceback.format_exception(error))[-4000:] or None),
            metrics=ResultMetrics(queue_wait_time_ms=queue_wait, scraping_time_ms=ctx.scraping_ms,
                                  total_time_ms=total_ms),
        )

    async def _succeeded(self, ctx: JobContext, output: ActionOutput) -> Outcome:
        result = self._result(ctx, "success", output, None)
        key = await self.store.put_result(ctx.job, result)
        ctx.message.stored_result = key
        await self.idempotency.mark_done(ctx.identity, key)
        await self.breaker.record_success()
        ctx.probe = ""
        self.metrics.record_status(output.status_code)
        self.metrics.record_job(success=True, duration_ms=result.duration_ms)
        job_ended(log, "job done", "success", result.duration_ms, result_key=key)
        return Outcome(Disposition.DELETE, success=True)

    async def _failed(self, ctx: JobContext, error: ScraperError) -> Outcome:
        self.metrics.record_status(error.status_code)
        if isinstance(error, TargetClientError):
            result = self._result(ctx, "failure", None, error)
            key = await self.store.put_result(ctx.job, result)
            ctx.message.stored_result = key
            await self.idempotency.mark_done(ctx.identity, key)
            self.metrics.record_job(success=False, duration_ms=result.duration_ms,
                                    error_type=error.error_type.value)
            job_ended(log, "job failed", "failure", result.duration_ms, error_type=error.error_type.value,
                      error_message=str(error), result_key=key)
            return Outcome(Disposition.DELETE, reason=str(error), error_type=error.error_type.value)
        if ctx.job.action is Action.SEND_MESSAGE:
            if error.ambiguous or ctx.verify or ctx.message.send_in_doubt:  # also an earlier attempt's timeout
                await self.idempotency.mark_unknown(ctx.identity)
            else:
                await self.idempotency.release(ctx.identity)
        if isinstance(error, ActionTimeout) and self.shutdown.started:  # we cut it; the platform did nothing wrong
            return self._retry_later(ctx, error, 0.05, counted=False)
        if isinstance(error, OutcomeUnknown):  # resending blindly could message a real person twice
            return self._dead_letter(ctx, str(error), error.error_type)
        if isinstance(error, TargetRateLimited):
            await self._breaker_failure(ctx, f"429 from target: {error}")
            return self._retry_later(ctx, error, error.retry_after_s, counted=False)
        if isinstance(error, TargetServerError):
            await self._breaker_failure(ctx, f"{error.status_code} from target after retries")
        if isinstance(error, ActionTimeout) and self.load.overloaded():
            ctx.message.overload_rounds += 1
            log.warning("timed out under local CPU pressure; not the platform's failure",
                        extra={"cpu_pressure_pct": self.load.pressure_pct()})
            if ctx.message.overload_rounds < 2 * self.max_rounds:
                return self._retry_later(ctx, error, self._round_backoff(ctx.message.overload_rounds), False)
            return self._dead_letter(ctx, f"timed out {ctx.message.overload_rounds} times under local CPU "
                                          f"pressure: {error}", error.error_type)
        ctx.message.rounds += 1
        if ctx.message.rounds >= self.max_rounds:
            return self._dead_letter(ctx, f"gave up after {ctx.message.rounds} failed rounds: {error}",
                                     error.error_type)
        return self._retry_later(ctx, error, self._round_backoff(ctx.message.rounds), counted=True)

    def _round_backoff(self, rounds: int) -> float:
        base = ROUND_BACKOFF_S[min(rounds, len(ROUND_BACKOFF_S)) - 1]
        return base * max(self.settings.retry_base_s, 0.01)

    def _retry_later(self, ctx: JobContext, error: ScraperError, wait_s: float, counted: bool) -> Outcome:
        self.metrics.record_job(success=False, duration_ms=(time.monotonic() - ctx.started) * 1000,
                                error_type=error.error_type.value)
        log.warning("job will run again", extra={
            "status": "retrying", "error": {"type": error.error_type.value, "message": str(error)[:500]},
            "wait_s": round(wait_s, 2), "rounds": ctx.message.rounds, "counted": counted})
        return Outcome(Disposition.WAIT, wait_s=max(wait_s, 0.05), reason=str(error),
                       error_type=error.error_type.value)

    def _dead_letter(self, ctx: JobContext, reason: str, error_type: ErrorType) -> Outcome:
        self.metrics.record_job(success=False, duration_ms=(time.monotonic() - ctx.started) * 1000,
                                error_type=error_type.value)
        # Per delivered message: a redriven job that fails again gets its own DLQ copy (FIFO dedup is 5 min).
        return Outcome(Disposition.DEAD_LETTER, error_type=error_type.value,
                       dedup_key=f"{ctx.identity}:{ctx.message.message_id}",
                       reason=reason)

    async def _breaker_failure(self, ctx: JobContext, reason: str) -> None:
        transition = await self.breaker.record_failure(reason)
        ctx.probe = ""
        if transition.opened:
            self.metrics.record_breaker_open()
            log.warning("circuit breaker opened", extra={"reason": reason})
