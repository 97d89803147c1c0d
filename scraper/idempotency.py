"""Idempotency records keyed by the message identity (ARCHITECTURE.md decision 7).

Called by `scraper.runner`. SQS delivers at least once, and send_message reaches real people, so:

- Before a non-idempotent action the runner *claims* the record (``started``, with a lease in Redis time).
  A redelivery that finds ``done`` is not run again: its message is deleted and its stored result kept.
  One that finds a live lease is someone else's running job: it waits for the lease to end.
- After the action the runner marks ``done`` (with the S3 key of the result) once the result is stored.
- If the attempt ended without touching the platform (429, 5xx answer, refused connection) the record is
  *released*, so a retry sends normally. If it ended ambiguously (timeout or crash mid-send, SIGTERM cut,
  SIGKILL leaving the lease to expire) it is left ``unknown``: the next claim returns ``verify`` and the runner
  asks the platform whether the send landed (by its client_ref) before sending, never sending twice.

Idempotent actions only use `lookup` / `mark_done`, so a finished job is not re-scraped either.
Redis may restart empty: these records are a fast path, and the durable ones (the result in S3, the platform's
client_ref) decide when a record is missing (`scraper.runner`, "Once only, without trusting Redis").
Key: `common.redis_keys.idempotency` (``huntaze:<schema>:scraper:idem:{identity}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from importlib import resources

from redis.asyncio import Redis

from common import redis_keys

RECORD_TTL_S = 14 * 24 * 3600  # the queue's retention: no redelivery can come later than this


class Claim(StrEnum):
    CLAIMED = "claimed"
    DONE = "done"
    BUSY = "busy"
    VERIFY = "verify"
    NONE = "none"
    STARTED = "started"
    UNKNOWN = "unknown"
    RELEASED = "released"


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    result_key: str = ""
    wait_s: float = 0.0
    since_ms: int = 0  # VERIFY/CLAIMED: when the first attempt claimed the record (Redis time)


class IdempotencyStore:
    def __init__(self, redis: Redis, owner: str, prefix: str = redis_keys.IDEMPOTENCY_PREFIX) -> None:
        self._redis = redis
        self._owner = owner
        self._prefix = prefix
        script = resources.files("scraper").joinpath("idempotency.lua").read_text()
        self._script = redis.register_script(script)

    def key(self, identity: str) -> str:
        return f"{self._prefix}:{identity}"

    async def _run(self, op: str, identity: str, lease_s: float = 0.0, result_key: str = "") -> ClaimResult:
        args: list[str | int] = [op, self._owner, int(lease_s * 1000), RECORD_TTL_S, result_key]
        raw = await self._script(keys=[self.key(identity)], args=args)
        state, extra = (part.decode() if isinstance(part, bytes) else str(part) for part in raw)
        if state == Claim.BUSY:
            return ClaimResult(Claim.BUSY, wait_s=int(extra) / 1000.0)
        if state in (Claim.VERIFY, Claim.CLAIMED):
            return ClaimResult(Claim(state), since_ms=int(extra or 0))
        return ClaimResult(Claim(state), result_key=extra)

    async def claim(self, identity: str, lease_s: float) -> ClaimResult:
        return await self._run("claim", identity, lease_s=lease_s)

    async def lookup(self, identity: str) -> ClaimResult:
        return await self._run("lookup", identity)

    async def mark_done(self, identity: str, result_key: str) -> None:
        await self._run("done", identity, result_key=result_key)

    async def release(self, identity: str) -> None:
        await self._run("release", identity)

    async def mark_unknown(self, identity: str) -> None:
        await self._run("unknown", identity)
