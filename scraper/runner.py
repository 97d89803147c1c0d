"""Runs one received message to an `Outcome`: parse, gate (breaker, idempotency), attempts, result.

Called by `scraper.worker` for each message of a group, in order. The worker applies the outcome to SQS:

- ``DELETE``: a result is stored (success, or a final 4xx failure), or the job already ran (a redelivery).
- ``RELEASE``: give the message back with ``visibility_s`` (Retry-After for 429, 0 otherwise); the worker then
  releases the group's later messages of the batch too, so order holds.
- ``DEAD_LETTER``: poison (the body breaks the contract), or a transient failure on the message's last allowed
  receive; the worker copies it to the DLQ with ``error``/``error_type`` and deletes it.

The policy itself (what is retried in the job, how long) is `scraper.policy`; the classification is
`scraper.errors`. Failures of our own infrastructure (Redis, S3) release the message with a short backoff.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
import traceback
from dataclasses import dataclass
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
from scraper.breaker import BreakerState, CircuitBreaker
from scraper.budget import Budget, Shutdown
from scraper.consumer import QueueInfo, Received
from scraper.errors import (
    ActionTimeout,
    ScraperError,
    TargetClientError,
    TargetRateLimited,
    TargetServerError,
)
from scraper.idempotency import Claim, IdempotencyStore
from scraper.metrics import Metrics
from scraper.policy import RetryPlan
from scraper.results import MediaSink, ResultStore
from scraper.settings import ScraperSettings

log = logging.getLogger(__name__)
INFRA_BACKOFF_S = 5


class Disposition(StrEnum):
    DELETE = "delete"
    RELEASE = "release"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class Outcome:
    disposition: Disposition
    visibility_s: int = 0
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
    probe: bool
    verify: bool = False
    scraping_ms: int = 0


def client_ref(identity: str) -> str:
    """The reference every send carries, derived from the message identity: the same for every attempt and
    redelivery of a job, so after an interrupted send `SiteSession.find_sent` finds exactly that job's message."""
    return hashlib.sha256(identity.encode()).hexdigest()[:40]


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
    ) -> None:
        self.settings = settings
        self.adapter = adapter
        self.breaker = breaker
        self.idempotency = idempotency
        self.store = store
        self.metrics = metrics
        self.queue_info = queue_info
        self.shutdown = shutdown

    async def run(self, message: Received, probe: bool = False) -> Outcome:
        started = time.monotonic()
        try:
            job = parse_job(message.body)
        except ContractError as exc:
            log.warning("poison message", extra={"message_id": message.message_id, "error": exc.summary()})
            return Outcome(Disposition.DEAD_LETTER, reason=f"invalid job: {exc.summary()}",
                           error_type=ErrorType.VALIDATION.value, dedup_key=message.message_id)
        identity = message_identity(job, message.origin_message_id)
        budget = Budget(message, self.settings.job_deadline_s, self.settings.visibility_margin_s, self.shutdown)
        ctx = JobContext(message, job, identity, budget, started, probe)
        with bind(creator_id=job.creator_id, action=job.action.value,
                  message_id=message.origin_message_id, receive_count=message.receive_count):
            try:
                return await self._run_parsed(ctx)
            except Exception as exc:  # our infrastructure (Redis, S3): back off, never lose the job
                log.exception("infrastructure failure; releasing the message")
                return self._give_back(ctx, f"infrastructure failure: {type(exc).__name__}: {exc}",
                                       ErrorType.UNKNOWN, INFRA_BACKOFF_S)

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

    async def _admit(self, ctx: JobContext) -> Outcome | Admitted:
        """Breaker and idempotency gates; an Outcome means: do not run."""
        if not ctx.probe:
            state, left_s = await self.breaker.state()
            if state is BreakerState.OPEN:
                return Outcome(Disposition.RELEASE, visibility_s=max(1, math.ceil(left_s)),
                               reason="circuit breaker open")
        if ctx.job.action is not Action.SEND_MESSAGE:
            found = await self.idempotency.lookup(ctx.identity)
            return self._duplicate(found.result_key) if found.claim is Claim.DONE else Admitted()
        # The worker keeps the message invisible this long (see Worker._cover); a redelivery after it verifies.
        lease_s = self.settings.job_deadline_s + self.settings.visibility_margin_s
        claim = await self.idempotency.claim(ctx.identity, lease_s)
        if claim.claim is Claim.DONE:
            return self._duplicate(claim.result_key)
        if claim.claim is Claim.BUSY:
            log.info("job is running elsewhere; retry after its lease", extra={"wait_s": claim.wait_s})
            return Outcome(Disposition.RELEASE, visibility_s=max(1, math.ceil(claim.wait_s)),
                           reason="running elsewhere")
        return Admitted(verify=claim.claim is Claim.VERIFY)

    def _duplicate(self, result_key: str) -> Outcome:
        log.info("job already done; deleting the redelivery", extra={"result_key": result_key})
        return Outcome(Disposition.DELETE, duplicate=True, reason="already done")

    async def _attempts(self, ctx: JobContext, admitted: Admitted) -> ActionOutput:
        plan = RetryPlan(ctx.budget, self.settings.action_timeout_s, self.settings.retry_base_s)
        began = time.monotonic()
        try:
            async with ctx.budget.scope():
                if admitted.verify:
                    found = await self._attempt(ctx, plan.attempt_timeout(), verify=True)
                    if found is not None:
                        return found
                    ctx.verify = False  # the platform shows no earlier send: sending is safe
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
        """One attempt in a fresh session; with `verify`, only look for the send of an interrupted attempt."""
        if timeout_s <= 0:
            raise ActionTimeout("no budget left for another attempt")
        try:
            async with asyncio.timeout(timeout_s) as scope:
                async with self.adapter.session(ctx.job.creator_id, timeout_s) as session:
                    if verify:
                        return await session.find_sent(ctx.job, client_ref(ctx.identity))
                    return await self._dispatch(session, ctx)
        except TimeoutError:
            if scope.expired():
                raise ActionTimeout(f"attempt timed out after {timeout_s:.1f}s") from None
            raise

    async def _dispatch(self, session: SiteSession, ctx: JobContext) -> ActionOutput:
        job = ctx.job
        if job.action is Action.SEND_MESSAGE:
            return await session.send_message(job, client_ref(ctx.identity))
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
        await self.idempotency.mark_done(ctx.identity, key)
        await self.breaker.record_success()
        self.metrics.record_status(output.status_code)
        self.metrics.record_job(success=True, duration_ms=result.duration_ms)
        log.info("job done", extra={"result_key": key, "duration_ms": result.duration_ms})
        return Outcome(Disposition.DELETE, success=True)

    async def _failed(self, ctx: JobContext, error: ScraperError) -> Outcome:
        self.metrics.record_status(error.status_code)
        log.warning("job failed", extra={"error": str(error), "error_type": error.error_type.value})
        if isinstance(error, TargetClientError):
            result = self._result(ctx, "failure", None, error)
            key = await self.store.put_result(ctx.job, result)
            await self.idempotency.mark_done(ctx.identity, key)
            self.metrics.record_job(success=False, duration_ms=result.duration_ms)
            return Outcome(Disposition.DELETE, reason=str(error), error_type=error.error_type.value)
        if ctx.job.action is Action.SEND_MESSAGE:
            if error.ambiguous or ctx.verify:
                await self.idempotency.mark_unknown(ctx.identity)
            else:
                await self.idempotency.release(ctx.identity)
        visibility = 0
        if isinstance(error, TargetRateLimited):
            visibility = math.ceil(error.retry_after_s)
            await self._breaker_failure(f"429 from target: {error}")
        elif isinstance(error, TargetServerError):
            await self._breaker_failure(f"{error.status_code} from target after retries")
        outcome = self._give_back(ctx, str(error), error.error_type, visibility)
        if outcome.disposition is Disposition.DEAD_LETTER:
            status = "rate_limited" if isinstance(error, TargetRateLimited) else "failure"
            await self.store.put_result(ctx.job, self._result(ctx, status, None, error))
        self.metrics.record_job(success=False, duration_ms=(time.monotonic() - ctx.started) * 1000)
        return outcome

    async def _breaker_failure(self, reason: str) -> None:
        transition = await self.breaker.record_failure(reason)
        if transition.opened:
            self.metrics.record_breaker_open()
            log.warning("circuit breaker opened", extra={"reason": reason})

    def _give_back(self, ctx: JobContext, reason: str, error_type: ErrorType, visibility_s: int) -> Outcome:
        """Release a transiently failed message, or dead-letter it when this was its last allowed receive."""
        limit = self.queue_info.max_receive_count
        if limit is not None and ctx.message.receive_count >= limit:
            return Outcome(Disposition.DEAD_LETTER, error_type=error_type.value, dedup_key=ctx.identity,
                           reason=f"gave up after receive {ctx.message.receive_count} of {limit}: {reason}")
        return Outcome(Disposition.RELEASE, visibility_s=visibility_s, reason=reason,
                       error_type=error_type.value)
