"""The platform slot: the hard limit where the platform feels it (ARCHITECTURE.md "Where the limit is kept").

Called by `scraper.worker` right before a job runs against the platform. The gate paces admissions so the FIFO
queue stays short; it cannot keep "at most N in any W" at the platform by itself (send latency, a scraper
outage that leaves the FIFO queue full, several scraper tasks draining it at full speed). So every scraper task
takes a slot from one shared sliding log in Redis before it acts, and holds its message group until the slot
comes (the group's later messages wait behind it, so per-creator order holds).

Invariant kept (P1): at most N jobs start acting against the platform in any window W, *measured by the
platform's own arrival times*. A slot is an entry in a sorted set whose score is +inf-like (now + the job's
deadline) while the job runs and becomes the job's real end time (Redis ``TIME``) when it is released. A new
slot is granted at ``now`` only if fewer than N entries have a score after ``now - W``: every job it does not
count ended more than W before ``now``, so all of that job's platform requests arrived more than W before any
request of the new job. A task that dies mid-job leaves its entry at now + deadline: conservative, never early.

Waiting for a slot never spends a receive: the message stays held, and `acquire` calls `heartbeat` (which
extends the message's visibility) while it waits, so the job never comes closer to the DLQ.

Enabled by ``HUNTAZE_PLATFORM_LIMIT`` (``N/W``, e.g. ``10/60s``, the same form as the gate's limits; set it to
the gate's global limit). Unset: no platform slot (the gate's pacing alone, as before).
Key: `common.redis_keys.platform_log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from redis.asyncio import Redis

from common import redis_keys

# KEYS[1] the platform log; ARGV: op ('take' | 'release'), member, N, W (us), hold (us: the job's deadline)
# take -> {granted 1|0, wait_us}; release -> {1, 0}
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n, w, hold = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function fmt(x) return string.format('%.0f', x) end
if ARGV[1] == 'release' then
  redis.call('ZADD', KEYS[1], 'XX', fmt(now), ARGV[2])
  return {1, 0}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', fmt(now - w))
local count = redis.call('ZCARD', KEYS[1])
if count < n then
  redis.call('ZADD', KEYS[1], fmt(now + hold), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], math.ceil((hold + w) / 1000) + 1000)
  return {1, 0}
end
local first = redis.call('ZRANGE', KEYS[1], count - n, count - n, 'WITHSCORES')
return {0, math.max(1000, tonumber(first[2]) + w - now)}
"""

POLL_S = 0.5
_UNITS_S = {"ms": 0.001, "s": 1.0, "": 1.0, "m": 60.0, "h": 3600.0}


def parse_limit(text: str | None) -> tuple[int, float] | None:
    """``N/W`` (``HUNTAZE_PLATFORM_LIMIT``, validated by `scraper.settings`) -> (N, W seconds); None when unset."""
    if not text or not text.strip():
        return None
    count, window = (part.strip() for part in text.split("/"))
    unit = window.lstrip("0123456789.")
    return int(count), float(window[: len(window) - len(unit)]) * _UNITS_S[unit.strip()]


Heartbeat = Callable[[], Awaitable[None]]


class PlatformSlot:
    """One shared platform limit: `hold` waits for a slot (heartbeating), runs the block, then releases."""

    def __init__(self, redis: Redis, limit: int, window_s: float, *, hold_s: float, name: str = "global",
                 heartbeat_every_s: float = 10.0) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a platform limit needs N >= 1 and W > 0")
        self.key = redis_keys.platform_log(name)
        self.limit = limit
        self.window_us = round(window_s * 1e6)
        self.hold_us = round(hold_s * 1e6)
        self.heartbeat_every_s = heartbeat_every_s
        self._script = redis.register_script(_SCRIPT)
        self.waits = 0  # slots that were not free at once (for metrics and tests)

    async def _call(self, op: str, member: str) -> tuple[bool, float]:
        granted, wait_us = await self._script(keys=[self.key],
                                              args=[op, member, self.limit, self.window_us, self.hold_us])
        return bool(int(granted)), int(wait_us) / 1e6

    async def acquire(self, heartbeat: Heartbeat) -> str:
        """Wait until a slot is free (calling `heartbeat` at least every `heartbeat_every_s`); its member."""
        member = uuid.uuid4().hex
        since_beat = 0.0
        while True:
            granted, wait_s = await self._call("take", member)
            if granted:
                return member
            self.waits += 1
            if since_beat + wait_s >= self.heartbeat_every_s:
                await heartbeat()
                since_beat = 0.0
            # A running job's entry ends when it is released, before its score says: look again soon.
            pause = min(wait_s, self.heartbeat_every_s, POLL_S)
            await asyncio.sleep(pause)
            since_beat += pause

    async def release(self, member: str) -> None:
        await self._call("release", member)

    @contextlib.asynccontextmanager
    async def hold(self, heartbeat: Heartbeat) -> AsyncIterator[None]:
        member = await self.acquire(heartbeat)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # an entry not released stays until now + hold: conservative
                await asyncio.shield(self.release(member))


def from_settings(redis: Redis, limit: str | None, name: str, *, hold_s: float,
                  heartbeat_every_s: float) -> PlatformSlot | None:
    """The platform slot configured by ``HUNTAZE_PLATFORM_LIMIT`` (`ScraperSettings.platform_limit`), or None."""
    parsed = parse_limit(limit)
    if parsed is None:
        return None
    return PlatformSlot(redis, parsed[0], parsed[1], hold_s=hold_s, name=name, heartbeat_every_s=heartbeat_every_s)
