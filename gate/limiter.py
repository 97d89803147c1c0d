"""The Redis rate limiter: one Lua script call decides a whole batch of jobs (called by `gate.handler`).

Why it looks like this (ARCHITECTURE.md decisions 1, 2 and 5):

- ``window`` guarantees "at most N admissions in any W seconds" (a sliding log of admission times); the seed's
  token bucket is kept as ``token_bucket`` and admits up to 2N in one W, which is why it is not the default.
- Every limit that applies to a job (global, per creator, ...) is checked and updated in the same script call,
  with Redis ``TIME`` as the only clock, so concurrent Lambdas cannot overshoot.
- A throttled job reserves its future slot (its identity becomes a member of the sliding log at a future time,
  or a token of debt in the bucket, and a slot key remembers the time). When the job comes back it is admitted
  without competing again: a burst of 500 costs O(1) receives per job instead of polling storms. A redelivered
  job (same identity) finds its slot key and never takes a second slot.
- Windows record actual admission times: a job whose reserved slot has come is admitted at the instant it is
  back, if every window allows that instant. Every admission counts every earlier admission, so the strict
  window holds on real times. Future slots are placed with a guard beyond W so the usual lag costs no hop: the
  configured guard, grown to the lateness the script observes (a decaying maximum, at most W/2). A reservation
  holds its capacity until its slot plus the guard; a job later than that keeps its ticket but no capacity.
- Each new job takes a ticket (a Redis counter), its place in line for good. A new job counts every reservation
  and so queues behind them; a job back for its slot counts admissions and only the reservations of earlier
  tickets. So a job that comes back late (a busy poller, a backlog ahead of it in the queue) and finds the
  window full is re-slotted at the earliest time the earlier tickets leave, one small hop, instead of behind the
  whole backlog; the later tickets it now overlaps adapt the same way when they come back. Receives per job stay
  O(1) whatever the backlog: no thundering herd, no O(n²) receives.
- The scraper's circuit breaker (`BREAKER_OPEN_KEY`, PX TTL = time left open) is read in the same script: while
  it exists every job is deferred for its remaining TTL, and future reservations are released.
- Jobs already forwarded (a mark set after the FIFO send succeeded) are reported as duplicates.

The script is loaded once, run with EVALSHA, and reloaded when Redis answers NOSCRIPT (restart, failover,
SCRIPT FLUSH). Any Redis failure or timeout is raised as `LimiterUnavailable`: the caller backs off.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from importlib import resources
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError
from redis.retry import Retry

from common import aws
from gate.errors import LimiterUnavailable
from gate.settings import Algorithm, GateSettings, LimitSpec, Scope

BREAKER_OPEN_KEY = "huntaze:breaker:onlyfans:open"
SLOT_KEY_PREFIX = "huntaze:gate:slot:"
TICKET_COUNTER_KEY = "huntaze:gate:tickets"
PENDING_KEY = "huntaze:gate:pending"
LATENESS_KEY = "huntaze:gate:lateness"
FORWARDED_KEY_PREFIX = "huntaze:gate:fwd:"
# A slot key outlives its slot by this much: a job admitted but not yet forwarded (SQS failed) that comes back
# within it is admitted again without taking another slot.
SLOT_GRACE_S = 900
_FIELDS_PER_RECORD = 4


class Status(IntEnum):
    """What the script decided for one job. Values are the script's return codes."""

    ADMITTED = 1  # a slot was free now
    ADMITTED_RESERVED = 2  # the job's reserved slot has come
    DEFERRED_RESERVED = 3  # throttled; a future slot is reserved for it
    DEFERRED_EARLY = 4  # it came back before its reserved slot (DelaySeconds caps at 900 s)
    DEFERRED_UNRESERVED = 5  # throttled; no reservation (disabled, or past the horizon)
    BREAKER_OPEN = 6  # the target is throttling us; everything waits
    DUPLICATE = 7  # already forwarded: report done, send nothing


ALLOWED = frozenset({Status.ADMITTED, Status.ADMITTED_RESERVED})


@dataclass(frozen=True)
class LimitRequest:
    """One job to decide: its stable identity and the values of the scopes limits may key on."""

    identity: str
    creator_id: str
    user_id: str
    action: str

    def scope_value(self, scope: Scope) -> str | None:
        return {Scope.GLOBAL: None, Scope.CREATOR: self.creator_id, Scope.USER: self.user_id,
                Scope.ACTION: self.action}[scope]


@dataclass(frozen=True)
class Decision:
    status: Status
    retry_after_s: float
    remaining: int
    slot_us: int
    now_us: int

    @property
    def allowed(self) -> bool:
        return self.status in ALLOWED

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait (rounded up, at least 1 unless allowed): SQS DelaySeconds and the log line."""
        if self.allowed or self.status is Status.DUPLICATE:
            return 0
        return max(1, math.ceil(self.retry_after_s - 1e-9))

    @property
    def reserved_slot(self) -> datetime | None:
        return datetime.fromtimestamp(self.slot_us / 1e6, UTC) if self.slot_us else None


def load_script() -> str:
    return resources.files("gate").joinpath("decide.lua").read_text(encoding="utf-8")


def redis_auth_token(secret_id: str) -> str | None:
    """The AUTH token from the ``{"token": ...}`` secret (empty means no AUTH); never logged."""
    secret = aws.client("secretsmanager", read_timeout_s=5, max_attempts=3).get_secret_value(SecretId=secret_id)
    token = json.loads(secret["SecretString"]).get("token")
    return str(token) if token else None


def redis_client(settings: GateSettings) -> redis.Redis:
    """A client that fails fast: no client-side retries, short timeouts (a slow Redis counts as down)."""
    extra: dict[str, Any] = {}
    if settings.redis_auth_secret_id:
        token = redis_auth_token(settings.redis_auth_secret_id)
        if token:
            extra["password"] = token
    return redis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        **extra,
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=settings.redis_connect_timeout_s,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
    )


class Limiter:
    """Decides batches of `LimitRequest` against `limits`. Thread-safe as the redis client is."""

    def __init__(
        self,
        client: redis.Redis,
        limits: Sequence[LimitSpec],
        algorithm: Algorithm = Algorithm.WINDOW,
        *,
        reserve: bool = True,
        horizon_s: int = 21_600,
        breaker_default_s: int = 30,
        key_prefix: str = "rate_limit:onlyfans",
        slot_guard_ms: int = 1000,
    ) -> None:
        if not limits:
            raise ValueError("at least one limit is required")
        self.client = client
        self.limits = tuple(limits)
        self.algorithm = algorithm
        self.reserve = reserve
        self.horizon_s = horizon_s
        self.breaker_default_s = breaker_default_s
        self.key_prefix = key_prefix
        self.slot_guard_ms = slot_guard_ms
        self._script = load_script()
        self._sha: str | None = None

    @classmethod
    def from_settings(cls, settings: GateSettings, client: redis.Redis | None = None) -> Limiter:
        return cls(
            client or redis_client(settings),
            settings.limits,
            settings.rate_algorithm,
            reserve=settings.rate_reserve_slots,
            horizon_s=settings.rate_reservation_horizon_s,
            breaker_default_s=settings.breaker_default_retry_s,
            key_prefix=settings.rate_key_prefix,
            slot_guard_ms=settings.rate_slot_guard_ms,
        )

    def limit_key(self, spec: LimitSpec, request: LimitRequest) -> str:
        """Bucket state keeps the seed's name (``rate_limit:onlyfans:global``); logs live under ``window:``."""
        parts = [self.key_prefix]
        if self.algorithm is Algorithm.WINDOW:
            parts.append("window")
        parts.append(spec.scope.value)
        value = request.scope_value(spec.scope)
        if value is not None:
            parts.append(value)
        return ":".join(parts)

    def guard_us(self, spec: LimitSpec) -> int:
        """Least slack added to W when placing a future slot: a deferred job is received a little after its
        slot (send latency, the poller's lag); the guard keeps that lag from pushing it into the next window,
        which would cost it another hop. At most a tenth of the window; the script grows it to the lateness it
        observes, up to half the window."""
        return min(self.slot_guard_ms, spec.window_ms // 10) * 1000

    def decide(self, request: LimitRequest) -> Decision:
        return self.decide_batch([request])[0]

    def decide_batch(self, requests: Sequence[LimitRequest]) -> list[Decision]:
        """All decisions in one round trip, in order. Raises `LimiterUnavailable`."""
        if not requests:
            return []
        keys, argv = self._arguments(requests)
        raw = self._run(keys, argv)
        now_us = int(raw[0])
        decisions = []
        for i in range(len(requests)):
            status, retry_us, remaining, slot_us = (int(v) for v in raw[1 + i * 4 : 5 + i * 4])
            decisions.append(Decision(Status(status), retry_us / 1e6, remaining, slot_us, now_us))
        return decisions

    def mark_forwarded(self, identities: Sequence[str], ttl_s: int) -> None:
        """Remember forwarded jobs so a redelivery is reported done without a second send."""
        if not identities:
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for identity in identities:
                    pipe.set(FORWARDED_KEY_PREFIX + identity, "1", ex=ttl_s)
                pipe.execute()
        except RedisError as exc:
            raise LimiterUnavailable(f"could not mark forwarded jobs: {type(exc).__name__}") from exc

    def _arguments(self, requests: Sequence[LimitRequest]) -> tuple[list[str], list[Any]]:
        kind = "w" if self.algorithm is Algorithm.WINDOW else "b"
        argv: list[Any] = [
            1 if self.reserve else 0, self.horizon_s * 1_000_000, self.breaker_default_s * 1000,
            SLOT_GRACE_S * 1000, len(self.limits),
        ]
        for spec in self.limits:
            argv += [kind, spec.limit, spec.window_ms * 1000, self.guard_us(spec)]
        argv.append(len(requests))
        keys = [BREAKER_OPEN_KEY, TICKET_COUNTER_KEY, PENDING_KEY, LATENESS_KEY]
        for request in requests:
            keys += [SLOT_KEY_PREFIX + request.identity, FORWARDED_KEY_PREFIX + request.identity]
            keys += [self.limit_key(spec, request) for spec in self.limits]
            argv.append(request.identity)
        return keys, argv

    def _run(self, keys: list[str], argv: list[Any]) -> list[Any]:
        try:
            if self._sha is None:
                self._sha = str(self.client.script_load(self._script))
            try:
                result = self.client.evalsha(self._sha, len(keys), *keys, *argv)
            except NoScriptError:
                self._sha = str(self.client.script_load(self._script))
                result = self.client.evalsha(self._sha, len(keys), *keys, *argv)
        except RedisError as exc:
            raise LimiterUnavailable(f"Redis did not decide: {type(exc).__name__}: {exc}") from exc
        return cast(list[Any], result)


def breaker_ttl_ms(client: redis.Redis) -> int | None:
    """Remaining open time of the scraper's breaker, None when closed (diagnostics and tests)."""
    ttl = int(client.pttl(BREAKER_OPEN_KEY))
    return None if ttl == -2 else ttl

