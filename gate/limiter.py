"""The Redis rate limiter: one Lua script call decides a whole batch of jobs (called by `gate.batch`).

Why it looks like this (ARCHITECTURE.md decisions 1, 2 and 5, and "Where the limit is kept"):

- ``window`` guarantees "at most N admissions in any W seconds" on real admission times (Redis ``TIME``); the
  seed's token bucket is kept as ``token_bucket`` and admits up to 2N in one W, which is why it is not the default.
- Every limit that applies to a job (global, per creator, ...) is checked and updated in the same script call.
- A limit is one sorted set holding admissions and reserved slots. A throttled job reserves the next free slot,
  found by rank (the N-th latest entry + W, plus a guard between groups): O(log n) at any backlog, no scan of the
  reservations. When the job comes back it is admitted at the real instant if fewer than N entries lie in the
  W before it; a job that came back late into a full window waits a short while (`Status.WAITING`) and keeps
  its slot, so receives per job stay bounded.
- A duplicate delivery never changes the set: the job's state key (reserved, admitted, forwarded) answers it.
  A copy arriving while the first copy's send is in flight waits (`Status.IN_FLIGHT`), never frees a slot.
- Per creator, jobs are admitted in the order the gate first saw them: a reserved job goes only when it heads
  its creator's line, and a new job never overtakes a waiting one.
- A Redis that lost its memory (the epoch key is gone) counts the last W as full: nothing is admitted before
  one W has passed. Whoever knows a Redis is new and empty (the local plane that just started it, a test) calls
  `declare_empty`.
- The scraper's circuit breaker (`common.redis_keys.breaker_open`, PX TTL = time left open) is read in the same
  script: while it exists every job is deferred for its remaining TTL; reservations are kept.

Key names and their schema version live in `common.redis_keys`. The script is loaded once, run with EVALSHA,
and reloaded when Redis answers NOSCRIPT (restart, failover, SCRIPT FLUSH). Any Redis failure or timeout is
raised as `LimiterUnavailable`: the caller backs off.
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
from common import redis_keys as keys
from gate.errors import LimiterUnavailable
from gate.settings import Algorithm, GateSettings, LimitSpec, Scope

# Kept for callers of the first wave (tests, diagnostics): the one breaker flag, now from common.redis_keys.
BREAKER_OPEN_KEY = keys.breaker_open()


# 'a <admitted_us>' -> 'r <admitted_us> 0', and the job heads its creator's line (ticket 0). A line this write
# creates gets its TTL (ARGV[2], ms) at once: decide.lua reads a line without one as just created (I4, TTLs).
_SEND_FAILED = """
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 2) == 'a ' then
  redis.call('SET', KEYS[1], 'r ' .. string.sub(v, 3) .. ' 0', 'KEEPTTL')
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[2], 'NX')
end
return 0
"""


class Status(IntEnum):
    """What the script decided for one job. Values are the script's return codes."""

    ADMITTED = 1  # a slot was free now
    ADMITTED_RESERVED = 2  # the job's reserved slot has come
    DEFERRED_RESERVED = 3  # throttled; a future slot is reserved for it
    DEFERRED_EARLY = 4  # it came back before its reserved slot (DelaySeconds caps at 900 s)
    DEFERRED_UNRESERVED = 5  # throttled; no reservation (past the horizon)
    BREAKER_OPEN = 6  # the target is throttling us; everything waits
    DUPLICATE = 7  # already forwarded: report done, send nothing
    WAITING = 8  # its slot has come but the window is still full, or an earlier job of its creator waits
    IN_FLIGHT = 9  # a duplicate of a job just admitted, whose send may be under way: wait for its mark


ALLOWED = frozenset({Status.ADMITTED, Status.ADMITTED_RESERVED})
# A wait the gate may spend inside the invocation instead of re-sending a delayed copy.
SHORT_WAITS = frozenset({Status.DEFERRED_RESERVED, Status.DEFERRED_EARLY, Status.WAITING, Status.IN_FLIGHT})


@dataclass(frozen=True)
class LimitRequest:
    """One job to decide: its stable identity and the values of the scopes limits may key on."""

    identity: str
    creator_id: str
    user_id: str
    action: str
    # The producer's send time (us since the epoch; 0 = unknown, the decision time is used): a creator's jobs
    # are admitted in this order (decide.lua, I4).
    order_us: int = 0

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
    """decide.lua as packaged, its CONFIG line unset (see `Limiter.script`)."""
    return resources.files("gate").joinpath("decide.lua").read_text(encoding="utf-8")


_CONFIG_LINE = "--@CONFIG@"


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
        horizon_s: int = 21_600,
        breaker_default_s: int = 30,
        slot_guard_ms: int = 1000,
        settle_s: float = 60.0,
        admitted_ttl_s: int = 86_400,
        stale_s: float = 900.0,
        order_settle_s: float = 0.0,
    ) -> None:
        if not limits:
            raise ValueError("at least one limit is required")
        self.client = client
        self.limits = tuple(limits)
        self.algorithm = algorithm
        self.horizon_s = horizon_s
        self.breaker_default_s = breaker_default_s
        self.slot_guard_ms = slot_guard_ms
        self.settle_s = settle_s
        self.admitted_ttl_s = admitted_ttl_s
        self.stale_s = stale_s
        self.order_settle_s = order_settle_s
        self._script = self.script()
        self._sha: str | None = None

    @classmethod
    def from_settings(cls, settings: GateSettings, client: redis.Redis | None = None) -> Limiter:
        return cls(
            client or redis_client(settings),
            settings.limits,
            settings.rate_algorithm,
            horizon_s=settings.rate_reservation_horizon_s,
            breaker_default_s=settings.breaker_default_retry_s,
            slot_guard_ms=settings.rate_slot_guard_ms,
            admitted_ttl_s=settings.forwarded_mark_ttl_s,
            order_settle_s=min(settings.order_settle_ms / 1000, settings.rate_hold_max_s),
        )

    def limit_key(self, spec: LimitSpec, request: LimitRequest) -> str:
        name = keys.limit_name(spec.scope.value, request.scope_value(spec.scope))
        return keys.limit_slots(name) if self.algorithm is Algorithm.WINDOW else keys.limit_bucket(name)

    def ttl_mark_key(self, spec: LimitSpec, request: LimitRequest) -> str:
        """The string key that says a limit's log had its TTL set less than a minute ago (decide.lua, TTLs)."""
        return keys.limit_ttl_mark(keys.limit_name(spec.scope.value, request.scope_value(spec.scope)))

    def guard_us(self, spec: LimitSpec) -> int:
        """Slack added between consecutive groups of N future slots: a deferred job is received a little after
        its slot (whole DelaySeconds, send latency, the poller's lag); the guard keeps that lag from pushing a
        group into the next group's window. At most a fiftieth of the window: the gate holds a job that came back
        a little late inside the invocation, so the guard only has to cover the common lag, and every bit of it
        is capacity the drain loses (2 % here)."""
        return min(self.slot_guard_ms, spec.window_ms // 50) * 1000

    def script(self) -> str:
        """decide.lua with this limiter's constants written in its CONFIG line: they are the same for every call,
        so no call sends or parses them (decide.lua, "Cost"); each configuration has its own script SHA."""
        kind = "w" if self.algorithm is Algorithm.WINDOW else "b"

        def table(values: Sequence[object]) -> str:
            return "{" + ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in values) + "}"

        config = (
            "local breaker_default_us, horizon, settle, admitted_ttl, stale, order_settle = "
            f"{self.breaker_default_s * 1_000_000}, {self.horizon_s * 1_000_000}, {round(self.settle_s * 1e6)}, "
            f"{self.admitted_ttl_s * 1000}, {round(self.stale_s * 1e6)}, {round(self.order_settle_s * 1e6)}\n"
            f"local L, kinds, caps, windows, guards = {len(self.limits)}, {table([kind] * len(self.limits))}, "
            f"{table([spec.limit for spec in self.limits])}, {table([spec.window_ms * 1000 for spec in self.limits])}, "
            f"{table([self.guard_us(spec) for spec in self.limits])}"
        )
        source = load_script()
        if source.count(_CONFIG_LINE) != 1:
            raise ValueError(f"gate/decide.lua: expected one {_CONFIG_LINE} line for the limiter's constants")
        return source.replace(_CONFIG_LINE, config)

    def order_ttl_ms(self) -> int:
        """A creator's line's TTL (decide.lua, I4): it outlives any slot within the horizon, plus stale."""
        return math.ceil((max(self.horizon_s * 1e6, self.settle_s * 1e6) + self.stale_s * 1e6) / 1000) + 900_000

    def warm(self) -> None:
        """Load the script into Redis now (a cold start), so the first decision pays no extra round trip."""
        try:
            self._sha = str(self.client.script_load(self._script))
        except RedisError as exc:
            raise LimiterUnavailable(f"could not load the limiter script: {type(exc).__name__}") from exc

    def decide(self, request: LimitRequest) -> Decision:
        return self.decide_batch([request])[0]

    def decide_batch(self, requests: Sequence[LimitRequest]) -> list[Decision]:
        """All decisions in one round trip, in order. Raises `LimiterUnavailable`."""
        if not requests:
            return []
        keys_, argv = self._arguments(requests)
        raw = self._run(keys_, argv)
        now_us = int(raw[0])
        decisions = []
        for i in range(len(requests)):
            status, retry_us, remaining, slot_us = (int(v) for v in raw[1 + i * 4 : 5 + i * 4])
            decisions.append(Decision(Status(status), retry_us / 1e6, remaining, slot_us, now_us))
        return decisions

    def mark_forwarded(self, requests: Sequence[LimitRequest], ttl_s: int) -> None:
        """Remember forwarded jobs so a redelivery is reported done without a second send, and take each out of
        its creator's line, so the creator's next job may go (decide.lua, I4)."""
        if not requests:
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for request in requests:
                    pipe.set(keys.gate_job(request.identity), "f", ex=ttl_s)
                    pipe.zrem(keys.gate_order(request.creator_id), request.identity)
                pipe.execute()
        except RedisError as exc:
            raise LimiterUnavailable(f"could not mark forwarded jobs: {type(exc).__name__}") from exc

    def send_failed(self, requests: Sequence[LimitRequest]) -> None:
        """The forward of these admitted jobs failed (the gate reports their records for redelivery). Each becomes
        a reserved job whose slot is its failed admission, first in its creator's line: its redelivery goes at
        once if the window allows, moving its own entry to the real time, never taking a second slot."""
        if not requests:
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for request in requests:
                    pipe.eval(_SEND_FAILED, 2, keys.gate_job(request.identity), keys.gate_order(request.creator_id),
                              request.identity, self.order_ttl_ms())
                pipe.execute()
        except RedisError as exc:
            raise LimiterUnavailable(f"could not record failed sends: {type(exc).__name__}") from exc

    def declare_empty(self) -> bool:
        """Say this Redis is new and its windows are known empty (no admission happened in the last W), so the
        first W is not counted as full. Only for whoever just created the Redis; True if the epoch was set."""
        try:
            return bool(self.client.set(keys.LIMITER_EPOCH, "0", nx=True))
        except RedisError as exc:
            raise LimiterUnavailable(f"could not set the limiter epoch: {type(exc).__name__}") from exc

    def _arguments(self, requests: Sequence[LimitRequest]) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of one call (decide.lua, header): the limiter's constants are in the script itself."""
        argv: list[Any] = []
        keys_ = [keys.breaker_open(), keys.LIMITER_EPOCH]
        for request in requests:
            keys_ += [keys.gate_job(request.identity), keys.gate_order(request.creator_id)]
            keys_ += [self.limit_key(spec, request) for spec in self.limits]
            keys_ += [self.ttl_mark_key(spec, request) for spec in self.limits]
            argv += [request.identity, request.order_us]
        return keys_, argv

    def _run(self, keys_: list[str], argv: list[Any]) -> list[Any]:
        try:
            if self._sha is None:
                self._sha = str(self.client.script_load(self._script))
            try:
                result = self.client.evalsha(self._sha, len(keys_), *keys_, *argv)
            except NoScriptError:
                self._sha = str(self.client.script_load(self._script))
                result = self.client.evalsha(self._sha, len(keys_), *keys_, *argv)
        except RedisError as exc:
            raise LimiterUnavailable(f"Redis did not decide: {type(exc).__name__}: {exc}") from exc
        return cast(list[Any], result)


def breaker_ttl_ms(client: redis.Redis) -> int | None:
    """Remaining open time of the scraper's breaker, None when closed (diagnostics and tests)."""
    ttl = int(client.pttl(keys.breaker_open()))
    return None if ttl == -2 else ttl
