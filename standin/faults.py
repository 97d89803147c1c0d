"""The fault model of the stand-in platform and the middleware that applies it.

Tests, benchmarks and the demo describe misbehaviour with a `Faults` value (through
`StandinServer.set_faults` or `POST /__admin/faults`); `FaultMiddleware` applies the request-level faults
(latency, 429 with Retry-After, 5xx, 4xx for a creator) before any route runs. The page-level faults (a page
that crashes the Chromium renderer, a page that never finishes loading) are rendered by `standin.web`, which
asks `FaultInjector.crashes` / `FaultInjector.hangs`.

Decision order for one operation: latency, then rate limit, then the next-K 5xx, then the seeded 5xx rate,
then the creator's 4xx. Only operations count (see `standin.traffic.is_operation`).
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from standin.traffic import is_operation

CreatorResolver = Callable[[Scope], str | None]


class RateLimitFault(BaseModel):
    """At most `limit` operations per sliding window of `window_s` seconds; the rest get 429."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(ge=0)
    window_s: float = Field(gt=0)
    retry_after_s: int = Field(default=1, ge=0)


class Error5xxFault(BaseModel):
    """The next `next` operations fail; then each fails with probability `rate` (RNG seeded by `seed`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate: float = Field(default=0.0, ge=0.0, le=1.0)
    next: int = Field(default=0, ge=0)
    status: int = Field(default=503, ge=500, le=599)
    seed: int = 0


class Faults(BaseModel):
    """Every fault active on a stand-in instance; the default value means "behave"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_limit: RateLimitFault | None = None
    error_5xx: Error5xxFault | None = None
    latency_ms: int = Field(default=0, ge=0, le=600_000)
    fail_creators: dict[str, int] = Field(default_factory=dict)
    crash_creators: list[str] = Field(default_factory=list)
    hang_creators: list[str] = Field(default_factory=list)

    @field_validator("fail_creators")
    @classmethod
    def _statuses_are_4xx(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {creator: status for creator, status in value.items() if not 400 <= status <= 499}
        if bad:
            raise ValueError(f"fail_creators statuses must be 4xx (got {bad})")
        return value


@dataclass(frozen=True)
class Rejection:
    """Why an operation is refused: the status to answer and, for 429, the Retry-After seconds."""

    status: int
    reason: str
    retry_after_s: int | None = None


class FaultInjector:
    """Holds the active `Faults` and their run state (window log, next-K counter, RNG). Thread-safe."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = Faults()
        self._window: deque[float] = deque()
        self._next_failures = 0
        self._rng = random.Random(0)
        self.set(faults or Faults())

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def set(self, faults: Faults) -> None:
        """Replace the active faults and restart their counters, window and RNG."""
        with self._lock:
            self._faults = faults
            self._window.clear()
            error = faults.error_5xx
            self._next_failures = error.next if error else 0
            self._rng = random.Random(error.seed if error else 0)

    def latency_s(self) -> float:
        return self.faults.latency_ms / 1000.0

    def crashes(self, creator_id: str | None) -> bool:
        return creator_id is not None and creator_id in self.faults.crash_creators

    def hangs(self, creator_id: str | None) -> bool:
        return creator_id is not None and creator_id in self.faults.hang_creators

    def creator_status(self, creator_id: str | None) -> int | None:
        """The 4xx every request about `creator_id` must get, if that creator is failed."""
        if creator_id is None:
            return None
        return self.faults.fail_creators.get(creator_id)

    def admit(self, creator_id: str | None) -> Rejection | None:
        """Decide one operation: None to let it through, else the rejection to answer."""
        with self._lock:
            rejection = self._rate_limited() or self._server_error()
            faults = self._faults
        if rejection is not None:
            return rejection
        status = faults.fail_creators.get(creator_id) if creator_id is not None else None
        return Rejection(status, "creator_unavailable") if status is not None else None

    def _rate_limited(self) -> Rejection | None:
        limit = self._faults.rate_limit
        if limit is None:
            return None
        now = time.monotonic()
        while self._window and now - self._window[0] >= limit.window_s:
            self._window.popleft()
        if len(self._window) >= limit.limit:
            return Rejection(429, "rate_limited", limit.retry_after_s)
        self._window.append(now)
        return None

    def _server_error(self) -> Rejection | None:
        error = self._faults.error_5xx
        if error is None:
            return None
        if self._next_failures > 0:
            self._next_failures -= 1
            return Rejection(error.status, "injected_server_error")
        if error.rate > 0 and self._rng.random() < error.rate:
            return Rejection(error.status, "injected_server_error")
        return None


class FaultMiddleware:
    """Applies latency and request-level rejections to operations before routing."""

    def __init__(self, app: ASGIApp, injector: FaultInjector, creator_of: CreatorResolver) -> None:
        self._app = app
        self._injector = injector
        self._creator_of = creator_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_operation(scope):
            await self._app(scope, receive, send)
            return
        delay = self._injector.latency_s()
        if delay > 0:
            await asyncio.sleep(delay)
        rejection = self._injector.admit(self._creator_of(scope))
        if rejection is None:
            await self._app(scope, receive, send)
            return
        await _send_rejection(scope, send, rejection)


async def _send_rejection(scope: Scope, send: Send, rejection: Rejection) -> None:
    path: str = scope["path"]
    if path.startswith(("/api/", "/web/")):
        payload: dict[str, object] = {"error": rejection.reason, "status": rejection.status}
        if rejection.retry_after_s is not None:
            payload["retry_after"] = rejection.retry_after_s
        body = json.dumps(payload).encode()
        content_type = b"application/json"
    else:
        body = f"<!doctype html><title>{rejection.status}</title><h1>{rejection.reason}</h1>".encode()
        content_type = b"text/html; charset=utf-8"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if rejection.retry_after_s is not None:
        headers.append((b"retry-after", str(rejection.retry_after_s).encode()))
    await send({"type": "http.response.start", "status": rejection.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
