"""The shared circuit breaker (seed "Circuit Breaker Pattern", ARCHITECTURE.md decision 5), kept in Redis.

Called by `scraper.worker` (before each receive: may we poll? are we the half-open probe?) and by
`scraper.runner` (after each job: success, failure, or neutral). Every scraper task and the gate share it.

States: CLOSED -> (``threshold`` consecutive failures) -> OPEN for ``open_s`` -> HALF_OPEN: exactly one probe job
runs; its success closes the breaker, its failure reopens it. Failures are 429s and 5xx answers that outlived
their retries; successes reset the count; other outcomes (a 4xx, a timeout) are neutral.

Redis keys (defined in `common.redis_keys`, with its schema version; ``{prefix}`` = ``breaker_prefix(name)``):

- ``{prefix}:open``: exists only while OPEN; value = reason; PX TTL = the remaining open time. This is the
  contract with the gate, which only checks that the key exists.
- ``{prefix}:state``: hash with ``state``, ``failures``, ``open_until_ms``, ``reason``, ``opens``.
- ``{prefix}:probe``: the half-open probe's lease (value = its token).

All transitions run in one Lua script (``breaker.lua``). Time comes from an injectable clock (epoch
seconds) so tests can move past the open period without waiting; OPEN also ends when the open key's Redis TTL
runs out, so the gate and the breaker agree even if no scraper task is alive to make the transition.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources

from redis.asyncio import Redis

from common import redis_keys

Clock = Callable[[], float]


def system_clock() -> float:
    # Looked up at call time, so freezegun's patched time.time applies too.
    return time.time()


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Permit(StrEnum):
    """What `acquire` allows: poll normally, poll one message as the probe, or wait."""

    CLOSED = "closed"
    PROBE = "probe"
    OPEN = "open"
    BUSY = "busy"


@dataclass(frozen=True)
class Admission:
    permit: Permit
    wait_s: float
    token: str

    @property
    def may_receive(self) -> bool:
        return self.permit in (Permit.CLOSED, Permit.PROBE)


@dataclass(frozen=True)
class Transition:
    state: str
    opened: bool
    failures: int


class CircuitBreaker:
    """One named breaker in Redis. Cheap to construct; the script is loaded once per client."""

    def __init__(
        self,
        redis: Redis,
        name: str = "onlyfans",
        *,
        threshold: int = 5,
        open_s: float = 60.0,
        probe_ttl_s: float = 300.0,
        clock: Clock = system_clock,
    ) -> None:
        self.prefix = redis_keys.breaker_prefix(name)
        self.open_key = redis_keys.breaker_open(name)
        self._keys = [self.open_key, redis_keys.breaker_state(name), redis_keys.breaker_probe(name)]
        self.threshold = threshold
        self.open_ms = int(open_s * 1000)
        self.probe_ttl_ms = int(probe_ttl_s * 1000)
        self.clock = clock
        self._redis = redis
        script = resources.files("scraper").joinpath("breaker.lua").read_text()
        self._script = redis.register_script(script)

    async def _run(self, op: str, reason: str = "", token: str = "") -> tuple[str, int]:
        now_ms = int(self.clock() * 1000)
        args: list[str | int] = [op, now_ms, self.threshold, self.open_ms, reason, self.probe_ttl_ms, token]
        raw = await self._script(keys=self._keys, args=args)
        state, number = raw
        return (state.decode() if isinstance(state, bytes) else str(state)), int(number)

    async def state(self) -> tuple[BreakerState, float]:
        """The current state and, while OPEN, the seconds left (moves OPEN to HALF_OPEN when due)."""
        state, left_ms = await self._run("peek")
        return BreakerState(state), left_ms / 1000.0

    async def acquire(self) -> Admission:
        """Before receiving: CLOSED polls; HALF_OPEN hands one caller the probe; others wait `wait_s`."""
        token = uuid.uuid4().hex
        permit, wait_ms = await self._run("acquire", token=token)
        return Admission(Permit(permit), max(wait_ms, 0) / 1000.0, token)

    async def record_failure(self, reason: str) -> Transition:
        state, failures = await self._run("failure", reason=reason[:200])
        return Transition(state="open" if state == "opened" else state, opened=state == "opened",
                          failures=failures)

    async def record_success(self) -> None:
        await self._run("success")

    async def record_neutral(self, token: str) -> None:
        """An outcome that says nothing about the target; frees the probe lease if `token` holds it."""
        await self._run("neutral", token=token)
