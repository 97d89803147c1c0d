"""Settings of the gate Lambda, read once per cold start by `gate.handler` from the environment.

The controller's Function manifest sets these variables; every one but the three queue URLs has a default that
reproduces the seed (10 jobs per 60 s, global). Environment variables:

- ``HUNTAZE_WORKFLOWS_QUEUE_URL`` (required): the FIFO queue admitted jobs go to (huntaze-hybrid-workflows.fifo).
- ``HUNTAZE_INGRESS_QUEUE_URL`` (required): the standard queue the gate consumes (huntaze-rate-limiter-queue);
  deferred copies are re-sent to it with ``DelaySeconds``.
- ``HUNTAZE_INGRESS_DLQ_URL`` (required): where invalid jobs go at once, with an ``error`` attribute.
- ``REDIS_URL`` (or ``HUNTAZE_REDIS_URL``): limiter state, reservations, breaker flag, forwarded marks. Secret.
- ``HUNTAZE_RATE_LIMITS``: comma-separated ``scope=N/W`` limits, all checked atomically in one script call.
  Scope is ``global``, ``creator``, ``user`` or ``action``; W is a number with an optional unit ``ms``, ``s``
  (default), ``m`` or ``h``. Default ``global=10/60s``. Example: ``global=10/60s,creator=3/60s``; tests use
  ``global=10/2s``.
- ``HUNTAZE_RATE_ALGORITHM``: ``window`` (default: at most N admissions in any W seconds, a sliding log) or
  ``token_bucket`` (the seed's bucket: capacity N, refill N/W per second; note it admits up to 2N in one W).
- Redis key names (and their schema version) are fixed in `common.redis_keys`, shared with the scraper.
- ``HUNTAZE_RATE_RESERVATION_HORIZON_S``: a slot further away than this is not reserved (default 21600).
- ``HUNTAZE_RATE_SLOT_GUARD_MS``: slack beyond W between consecutive groups of N reserved slots, absorbing the
  lag before a deferred job is received again (default 1000, capped at a fiftieth of each window).
- ``HUNTAZE_RATE_HOLD_MAX_S``: a wait up to this long (a slot a few seconds away, a window that frees in a
  moment) is spent inside the invocation rather than by re-sending a delayed copy, so it costs no receive
  (default 5; the whole invocation holds at most ``HUNTAZE_RATE_HOLD_BUDGET_S``, default 12, below the 30 s
  function timeout). 0 turns holding off.
- ``HUNTAZE_ORDER_SETTLE_MS``: a new job is not admitted before the gate has known it this long (default
  1000), held inside the invocation: an earlier job of the same creator, received at about the same time by
  another concurrent invocation, takes its place in the creator's line first, so one creator's jobs go in the
  order the producer sent them (by SQS SentTimestamp). It counts from the gate's first sight, not the send
  time: a backlog that returns to both pollers at once (after a visibility timeout) needs it as much as fresh
  jobs do. Keep the event source mapping's batching window at 0: a poller holding records for a window hides
  them from the other poller's invocation for longer than this. Capped by ``HUNTAZE_RATE_HOLD_MAX_S`` (no
  holding, no settle). 0 turns it off: jobs go in the order the gate first decides them.
- ``HUNTAZE_GATE_FAIL_OPEN``: DANGEROUS, default ``false``. When Redis is unreachable the gate defers every job
  (fail closed) so the upstream limit is never exceeded. ``true`` forwards jobs unlimited while Redis is down:
  the target platform may then throttle or ban the accounts. Use only in an incident, deliberately.
- ``HUNTAZE_REDIS_AUTH_SECRET_ID``: Secrets Manager secret holding the Redis AUTH token as JSON
  ``{"token": ...}`` (the seed's ``redis/auth-token``). Read once per cold start, so ``REDIS_URL`` (visible to
  anyone who can read the function's configuration) carries no password. Unset: the URL is used as it is.
- ``HUNTAZE_REDIS_CONNECT_TIMEOUT_S`` / ``HUNTAZE_REDIS_SOCKET_TIMEOUT_S``: default 0.5 s each; a slow Redis
  counts as unreachable.
- ``HUNTAZE_REDIS_BACKOFF_BASE_S`` / ``HUNTAZE_REDIS_BACKOFF_MAX_S``: deferral delay while Redis is
  unreachable, doubling with each deferral of the job (default 2 s, at most 60 s), with jitter.
- ``HUNTAZE_BREAKER_DEFAULT_RETRY_S``: deferral when the breaker key has no TTL (default 30).
- ``HUNTAZE_FORWARDED_MARK_TTL_S``: how long a forwarded job's identity is remembered (default 86400).
- ``HUNTAZE_RATE_LIMITER_VERSION``: the ``rate_limiter_version`` attribute (default ``2.0.0``).
- Inherited: ``HUNTAZE_ENV``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``HUNTAZE_LOG_LEVEL``.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.settings import HuntazeSettings


class Algorithm(StrEnum):
    WINDOW = "window"
    TOKEN_BUCKET = "token_bucket"


class Scope(StrEnum):
    GLOBAL = "global"
    CREATOR = "creator"
    USER = "user"
    ACTION = "action"


class LimitSpec(BaseModel):
    """One limit: at most `limit` admissions per `window_ms` for each value of `scope`."""

    model_config = ConfigDict(frozen=True)

    scope: Scope
    limit: int = Field(ge=1, le=100_000)
    window_ms: int = Field(ge=1, le=7 * 86_400_000)

    def __str__(self) -> str:
        return f"{self.scope.value}={self.limit}/{self.window_ms}ms"


_UNITS_MS = {"ms": 1, "s": 1000, "": 1000, "m": 60_000, "h": 3_600_000}
_LIMIT_RE = re.compile(r"^\s*(\w+)\s*=\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_limits(text: str) -> tuple[LimitSpec, ...]:
    """``global=10/60s,creator=3/1m`` -> limits. Raises ValueError naming the bad part and the format."""
    specs: list[LimitSpec] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _LIMIT_RE.match(part)
        if match is None:
            raise ValueError(f"{part!r} is not scope=N/W (e.g. global=10/60s,creator=3/60s)")
        scope, count, window, unit = match.groups()
        if scope not in Scope.__members__.values():
            raise ValueError(f"{part!r}: scope must be one of {[s.value for s in Scope]}")
        window_ms = round(float(window) * _UNITS_MS[unit or ""])
        specs.append(LimitSpec(scope=Scope(scope), limit=int(count), window_ms=window_ms))
    if not specs:
        raise ValueError("at least one limit is required, e.g. global=10/60s")
    if len({s.scope for s in specs}) != len(specs):
        raise ValueError("each scope may appear once")
    return tuple(specs)


class GateSettings(HuntazeSettings):
    """The gate's configuration; see the module docstring for each environment variable."""

    workflows_queue_url: str = Field(min_length=1)
    ingress_queue_url: str = Field(min_length=1)
    ingress_dlq_url: str = Field(min_length=1)
    rate_limits: str = "global=10/60s"
    rate_algorithm: Algorithm = Algorithm.WINDOW
    rate_reservation_horizon_s: int = Field(21_600, ge=1)
    rate_slot_guard_ms: int = Field(1000, ge=0, le=60_000)
    rate_hold_max_s: float = Field(5.0, ge=0, le=60)
    rate_hold_budget_s: float = Field(12.0, ge=0, le=600)
    order_settle_ms: int = Field(1000, ge=0, le=10_000)
    gate_fail_open: bool = False
    redis_auth_secret_id: str | None = Field(None, min_length=1)
    redis_connect_timeout_s: float = Field(0.5, gt=0, le=30)
    redis_socket_timeout_s: float = Field(0.5, gt=0, le=30)
    redis_backoff_base_s: int = Field(2, ge=1, le=900)
    redis_backoff_max_s: int = Field(60, ge=1, le=900)
    breaker_default_retry_s: int = Field(30, ge=1, le=900)
    forwarded_mark_ttl_s: int = Field(86_400, ge=300)
    rate_limiter_version: str = "2.0.0"

    @field_validator("rate_limits")
    @classmethod
    def _limits_parse(cls, value: str) -> str:
        parse_limits(value)
        return value

    @property
    def limits(self) -> tuple[LimitSpec, ...]:
        return parse_limits(self.rate_limits)
