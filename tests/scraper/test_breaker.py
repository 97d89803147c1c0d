"""The shared circuit breaker in real Redis: transitions, the gate's key, the injectable clock."""

from __future__ import annotations

import asyncio
import time

import redis

from common import redis_keys
from scraper.breaker import BreakerState, CircuitBreaker, Permit


class ManualClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def _breaker(url: str, clock: ManualClock) -> CircuitBreaker:
    from redis.asyncio import Redis

    return CircuitBreaker(Redis.from_url(url), "onlyfans", threshold=5, open_s=60, probe_ttl_s=30, clock=clock)


def test_breaker_five_consecutive_failures_opens_with_gate_key(redis_url: str) -> None:
    clock = ManualClock()

    async def scenario() -> list[bool]:
        breaker = await _breaker(redis_url, clock)
        opened = [(await breaker.record_failure("429 from target")).opened for _ in range(4)]
        await breaker.record_success()  # a success breaks the run of failures
        opened += [(await breaker.record_failure("429 from target")).opened for _ in range(5)]
        state, left = await breaker.state()
        assert state is BreakerState.OPEN and 59 < left <= 60
        assert (await breaker.acquire()).permit is Permit.OPEN
        return opened

    assert run(scenario()) == [False] * 4 + [False] * 4 + [True]
    plain = redis.Redis.from_url(redis_url)
    assert plain.get(redis_keys.breaker_open()) == b"429 from target"
    assert 55_000 < plain.pttl(redis_keys.breaker_open()) <= 60_000


def test_breaker_after_open_period_half_opens_with_single_probe(redis_url: str) -> None:
    clock = ManualClock()

    async def scenario() -> None:
        breaker = await _breaker(redis_url, clock)
        for _ in range(5):
            await breaker.record_failure("429")
        clock.now += 61  # the injected clock passes the open period; Redis's own TTL has not run out
        first, second = await breaker.acquire(), await breaker.acquire()
        assert (first.permit, second.permit) == (Permit.PROBE, Permit.BUSY)
        assert redis.Redis.from_url(redis_url).exists(redis_keys.breaker_open()) == 0
        assert (await breaker.state())[0] is BreakerState.HALF_OPEN
        await breaker.record_failure("429 again")  # the probe fails: open again for a full period
        assert (await breaker.state())[0] is BreakerState.OPEN
        clock.now += 61
        probe = await breaker.acquire()
        assert probe.permit is Permit.PROBE
        await breaker.record_success()
        assert (await breaker.state())[0] is BreakerState.CLOSED
        assert (await breaker.acquire()).permit is Permit.CLOSED

    run(scenario())


def test_breaker_neutral_probe_outcome_frees_probe_for_next_caller(redis_url: str) -> None:
    clock = ManualClock()

    async def scenario() -> None:
        breaker = await _breaker(redis_url, clock)
        for _ in range(5):
            await breaker.record_failure("429")
        clock.now += 61
        probe = await breaker.acquire()
        assert probe.permit is Permit.PROBE
        await breaker.record_neutral("not-the-holder")
        assert (await breaker.acquire()).permit is Permit.BUSY
        await breaker.record_neutral(probe.token)
        assert (await breaker.acquire()).permit is Permit.PROBE

    run(scenario())


def test_breaker_open_key_expiry_in_redis_time_half_opens(redis_url: str) -> None:
    clock = ManualClock()

    async def scenario() -> None:
        breaker = await _breaker(redis_url, clock)
        for _ in range(5):
            await breaker.record_failure("429")
        plain = redis.Redis.from_url(redis_url)
        plain.pexpire(redis_keys.breaker_open(), 1)
        for _ in range(500):  # bounded: Redis drops the key within milliseconds
            if not plain.exists(redis_keys.breaker_open()):
                break
            await asyncio.sleep(0.002)
        assert (await breaker.acquire()).permit is Permit.PROBE

    run(scenario())
