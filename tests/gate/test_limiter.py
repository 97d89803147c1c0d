"""The Redis limiter against a real redis-server: window guarantee, token bucket formula, reservations, breaker."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.backoff import NoBackoff
from redis.retry import Retry

from gate.errors import LimiterUnavailable
from gate.limiter import BREAKER_OPEN_KEY, SLOT_KEY_PREFIX, Limiter, LimitRequest, Status
from gate.settings import Algorithm, parse_limits


def req(identity: str, creator: str = "c1") -> LimitRequest:
    return LimitRequest(identity, creator, "u1", "scrape_profile")


def max_in_window(slots: list[int], window_us: int) -> int:
    """Most admissions in any half-open window of `window_us` (two pointers over sorted times)."""
    slots = sorted(slots)
    best, lo = 0, 0
    for hi, t in enumerate(slots):
        while t - slots[lo] >= window_us:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def test_limiter_seed_burst_of_20_gives_10_now_and_10_one_window_later(client: redis.Redis) -> None:
    limiter = Limiter(client, parse_limits("global=10/2s"))
    decisions = limiter.decide_batch([req(f"j{i}") for i in range(20)])
    now = decisions[0].now_us
    assert [d.status for d in decisions[:10]] == [Status.ADMITTED] * 10
    assert [d.status for d in decisions[10:]] == [Status.DEFERRED_RESERVED] * 10
    # One window later, plus the slot guard (W/10), in whole seconds: the job is visible again exactly then.
    assert {d.slot_us for d in decisions[10:]} == {now + 3_000_000}
    assert all(d.retry_after == 3 for d in decisions[10:])
    assert [d.remaining for d in decisions[:3]] == [9, 8, 7]


def test_limiter_reserved_job_comes_back_admitted_without_new_slot(client: redis.Redis) -> None:
    limiter = Limiter(client, parse_limits("global=1/0.3s"))
    first, second = limiter.decide_batch([req("a"), req("b")])
    assert (first.status, second.status) == (Status.ADMITTED, Status.DEFERRED_RESERVED)
    assert second.slot_us - second.now_us == 1_000_000  # 0.3 s, aligned to whole DelaySeconds
    early = limiter.decide(req("b"))
    assert early.status is Status.DEFERRED_EARLY and early.slot_us == second.slot_us
    deadline = time.monotonic() + 5
    while redis_now_us(client) < second.slot_us:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    back = limiter.decide(req("b"))
    assert back.status is Status.ADMITTED_RESERVED and back.slot_us >= second.slot_us
    # b's slot was already counted: the next job waits at least a full window after it.
    assert limiter.decide(req("c")).slot_us >= second.slot_us + 300_000


def redis_now_us(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1_000_000 + int(micros)


def wait_redis_time(client: redis.Redis, at_us: int) -> int:
    deadline = time.monotonic() + 10
    while (now := redis_now_us(client)) < at_us:
        assert time.monotonic() < deadline, "Redis time did not reach the slot"
        time.sleep(0.01)
    return now


def test_limiter_late_returner_keeps_its_place_later_tickets_hop(client: redis.Redis) -> None:
    limiter = Limiter(client, parse_limits("global=1/0.3s"))
    a, b, c, d = limiter.decide_batch([req("a"), req("b"), req("c"), req("d")])
    assert a.status is Status.ADMITTED and b.slot_us < c.slot_us < d.slot_us
    wait_redis_time(client, c.slot_us)
    # b is late (its slot passed a second ago); c comes back on time and takes the window.
    assert limiter.decide(req("c")).status is Status.ADMITTED_RESERVED
    late = limiter.decide(req("b"))
    assert late.status is Status.DEFERRED_RESERVED
    # One small hop, not behind d (a later ticket): the old algorithm placed it after d's window.
    assert late.slot_us < d.slot_us + 300_000 and late.retry_after == 1
    wait_redis_time(client, d.slot_us)
    on_time = limiter.decide(req("d"))
    if on_time.status is Status.DEFERRED_RESERVED:  # d came back before b: d adapts, b keeps its slot
        assert on_time.slot_us >= late.slot_us + 300_000
    wait_redis_time(client, late.slot_us)
    assert limiter.decide(req("b")).status is Status.ADMITTED_RESERVED


def test_limiter_redelivered_identity_takes_one_slot(client: redis.Redis) -> None:
    limiter = Limiter(client, parse_limits("global=2/10s"))
    assert limiter.decide(req("same")).status is Status.ADMITTED
    assert limiter.decide(req("same")).status is Status.ADMITTED_RESERVED
    assert limiter.decide(req("other")).status is Status.ADMITTED
    assert limiter.decide(req("third")).status is Status.DEFERRED_RESERVED


def test_limiter_several_limits_checked_atomically(client: redis.Redis) -> None:
    limiter = Limiter(client, parse_limits("global=5/10s,creator=2/10s"))
    decisions = limiter.decide_batch([req(f"a{i}", "A") for i in range(4)] + [req(f"b{i}", "B") for i in range(4)])
    statuses = [d.status for d in decisions]
    assert statuses[:4] == [Status.ADMITTED] * 2 + [Status.DEFERRED_RESERVED] * 2
    assert statuses[4:] == [Status.ADMITTED] * 2 + [Status.DEFERRED_RESERVED] * 2
    # A creator held back by its own limit does not block other creators (no head-of-line blocking).
    assert limiter.decide(req("c0", "C")).status is Status.ADMITTED
    assert limiter.decide(req("c1", "C")).status is Status.DEFERRED_RESERVED


def test_limiter_breaker_open_defers_for_its_ttl_and_releases_reservations(client: redis.Redis) -> None:
    limiter = Limiter(client, parse_limits("global=1/60s"))
    assert limiter.decide(req("a")).status is Status.ADMITTED
    assert limiter.decide(req("b")).status is Status.DEFERRED_RESERVED
    client.set(BREAKER_OPEN_KEY, "429 from target", px=1500)
    during = limiter.decide(req("b"))
    assert during.status is Status.BREAKER_OPEN and during.retry_after == 2 and not during.allowed
    assert client.get(SLOT_KEY_PREFIX + "b") is None
    assert limiter.decide(req("c")).status is Status.BREAKER_OPEN
    client.set(BREAKER_OPEN_KEY, "open, no ttl")
    assert limiter.decide(req("c")).retry_after == 30
    client.set(BREAKER_OPEN_KEY, "nearly closed", px=5)
    time.sleep(0.01)
    assert limiter.decide(req("c")).status is Status.DEFERRED_RESERVED


def test_limiter_script_flushed_reloads_on_noscript(client: redis.Redis) -> None:
    limiter = Limiter(client, parse_limits("global=5/1s"))
    assert limiter.decide(req("a")).allowed
    client.script_flush()
    assert limiter.decide(req("b")).allowed


def test_limiter_redis_unreachable_raises_limiter_unavailable_fast() -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2,
                       retry=Retry(NoBackoff(), 0))  # as gate.limiter.redis_client builds it
    limiter = Limiter(dead, parse_limits("global=5/1s"))
    started = time.monotonic()
    with pytest.raises(LimiterUnavailable, match="Redis did not decide"):
        limiter.decide(req("a"))
    print(f"failure detected in {time.monotonic() - started:.3f}s")


def test_limiter_without_reservation_defers_and_keeps_no_slot(client: redis.Redis) -> None:
    limiter = Limiter(client, parse_limits("global=1/5s"), reserve=False)
    assert limiter.decide(req("a")).allowed
    later = limiter.decide(req("b"))
    assert later.status is Status.DEFERRED_UNRESERVED and later.retry_after == 6  # W + guard, whole seconds
    assert client.get(SLOT_KEY_PREFIX + "b") is None


def test_limiter_token_bucket_matches_its_formula(client: redis.Redis) -> None:
    limiter = Limiter(client, parse_limits("global=4/2s"), Algorithm.TOKEN_BUCKET)
    decisions = limiter.decide_batch([req(f"t{i}") for i in range(7)])
    assert [d.status for d in decisions[:4]] == [Status.ADMITTED] * 4
    assert [d.remaining for d in decisions[:4]] == [3, 2, 1, 0]
    rate = 4 / 2.0
    for k, decision in enumerate(decisions[4:], start=1):
        assert decision.status is Status.DEFERRED_RESERVED
        # k/rate seconds, rounded up to whole seconds: the job comes back after whole DelaySeconds.
        assert decision.retry_after_s == pytest.approx(math.ceil(k / rate), abs=1e-5)
    state = {k.decode(): v.decode() for k, v in client.hgetall("rate_limit:onlyfans:global").items()}
    assert set(state) == {"tokens", "timestamp", "capacity", "refill_rate"}
    assert float(state["tokens"]) == pytest.approx(-3) and float(state["refill_rate"]) == pytest.approx(rate)
    assert int(state["capacity"]) == 4
    # The seed's flaw (decision 2): a bucket of N admits more than N within one window.
    slots = [d.slot_us for d in decisions]
    assert max_in_window(slots, 2_000_000) > 4


def test_limiter_token_bucket_refills_at_its_rate(client: redis.Redis) -> None:
    limiter = Limiter(client, parse_limits("global=4/2s"), Algorithm.TOKEN_BUCKET)
    seconds, micros = client.time()
    client.hset("rate_limit:onlyfans:global", mapping={"tokens": "0", "timestamp": f"{seconds - 1}.{micros:06d}",
                                                       "capacity": 4, "refill_rate": "2"})
    decision = limiter.decide(req("x"))
    assert decision.allowed and decision.remaining == 1  # 0 + 1 s * 2/s = 2 tokens, one taken


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    global_n=st.integers(1, 6),
    creator_n=st.integers(1, 4),
    batches=st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=10), min_size=1, max_size=5),
)
def test_limiter_any_schedule_never_exceeds_any_limit(
    client: redis.Redis, global_n: int, creator_n: int, batches: list[list[int]]
) -> None:
    client.flushdb()
    window_us = 10_000_000
    limiter = Limiter(client, parse_limits(f"global={global_n}/10s,creator={creator_n}/10s"))
    slots: list[tuple[int, int]] = []
    count = 0
    for batch in batches:
        requests = []
        for creator in batch:
            requests.append(req(f"j{count}", f"c{creator}"))
            count += 1
        for request, decision in zip(requests, limiter.decide_batch(requests), strict=True):
            assert decision.status in (Status.ADMITTED, Status.DEFERRED_RESERVED)
            assert decision.slot_us >= decision.now_us
            slots.append((int(request.creator_id[1:]), decision.slot_us))
    assert max_in_window([s for _, s in slots], window_us) <= global_n
    for creator in range(4):
        assert max_in_window([s for c, s in slots if c == creator], window_us) <= creator_n


def _client_loop(url: str, worker: int, jobs: int, admitted: list[tuple[str, str, int, int]],
                 lock: threading.Lock, deadline: float) -> None:
    rng = random.Random(1000 + worker)
    limiter = Limiter(redis.Redis.from_url(url), parse_limits("global=10/0.5s,creator=4/0.5s"))
    pending: dict[str, tuple[str, float]] = {}
    fresh = [(f"w{worker}-{i}", f"c{rng.randrange(3)}") for i in range(jobs)]
    while (fresh or pending) and time.monotonic() < deadline:
        due = [ident for ident, (_, at) in pending.items() if at <= time.monotonic()]
        if due:
            ident = due[0]
            creator = pending.pop(ident)[0]
        elif fresh and rng.random() < 0.7:
            ident, creator = fresh.pop()
        else:
            time.sleep(rng.uniform(0.001, 0.02))
            continue
        decision = limiter.decide(req(ident, creator))
        if decision.allowed:
            with lock:
                admitted.append((ident, creator, decision.slot_us, decision.now_us))
        else:
            pending[ident] = (creator, time.monotonic() + decision.retry_after_s)


def test_limiter_eight_concurrent_clients_never_exceed_window(redis_url: str) -> None:
    admitted: list[tuple[str, str, int, int]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 30
    threads = [threading.Thread(target=_client_loop, args=(redis_url, w, 10, admitted, lock, deadline))
               for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=40)
    assert len(admitted) == 80 and len({a[0] for a in admitted}) == 80
    assert all(now >= slot for _, _, slot, now in admitted), "a job was admitted before its slot"
    assert max_in_window([slot for _, _, slot, _ in admitted], 500_000) <= 10
    by_creator: dict[str, list[int]] = defaultdict(list)
    for _, creator, slot, _ in admitted:
        by_creator[creator].append(slot)
    assert all(max_in_window(s, 500_000) <= 4 for s in by_creator.values())
    print(f"80 admissions over {(max(a[2] for a in admitted) - min(a[2] for a in admitted)) / 1e6:.2f}s")


def test_limiter_redis_time_is_the_clock(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    limiter = Limiter(client, parse_limits("global=1/1s"))
    fake_now: Callable[[], float] = lambda: 0.0  # noqa: E731 - a caller clock that would break a naive limiter
    monkeypatch.setattr(time, "time", fake_now)
    decision = limiter.decide(req("a"))
    seconds, _ = client.time()
    assert abs(decision.now_us / 1e6 - seconds) < 5
