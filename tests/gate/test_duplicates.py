"""Duplicates never change the log: the issue's interleaving, and a property test of the gate over real Redis.

The property test drives the real `Gate` (real limiter, real redis-server) through a seam the gate owns, its
`Sender`: an in-memory ingress queue that redelivers copies at arbitrary times (early, late, twice) and a FIFO
queue with SQS's deduplication by id. Hypothesis interleaves new jobs, duplicate deliveries at any moment,
late returns, reservations whose state expires, Redis stalls (CLIENT PAUSE, so the gate's Redis calls time out
for real) during a decision or during the forwarded mark, and failed FIFO sends.
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from common import redis_keys
from gate.batch import Gate
from gate.forwarder import Outgoing
from gate.limiter import Limiter, LimitRequest, Status
from gate.settings import GateSettings, parse_limits
from tests.gate.factories import make_job, max_in_window


def req(identity: str, creator: str | None = None) -> LimitRequest:
    """A job; its own creator unless one is given (one creator's jobs queue behind each other, I4)."""
    return LimitRequest(identity, creator or f"creator-of-{identity}", "u1", "scrape_profile")


def wait_redis_time(client: redis.Redis, at_us: int) -> int:
    deadline = time.monotonic() + 10
    while True:
        seconds, micros = client.time()
        now = int(seconds) * 1_000_000 + int(micros)
        if now >= at_us:
            return now
        assert time.monotonic() < deadline, "Redis time did not reach the slot"
        time.sleep(0.005)


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def test_limiter_duplicate_before_mark_neither_frees_nor_takes_a_slot(client: redis.Redis) -> None:
    """The issue's interleaving at 10 per 2 s: 10 admitted; a group of reserved jobs comes back and 8 are admitted;
    a duplicate of one of them arrives before it is marked forwarded; then the rest of the group and new jobs.
    The old script removed the first admission and re-slotted the duplicate: 11 forwarded within 2 s."""
    limiter = Limiter(client, parse_limits("global=10/2s"))
    forwards: list[tuple[str, int]] = []

    def run(requests: list[LimitRequest]) -> list[Status]:
        decisions = limiter.decide_batch(requests)
        forwards.extend((r.identity, d.now_us) for r, d in zip(requests, decisions, strict=True) if d.allowed)
        return [d.status for d in decisions]

    assert run([req(f"a{i}") for i in range(10)]) == [Status.ADMITTED] * 10
    group = limiter.decide_batch([req(f"b{i}") for i in range(13)])
    assert {d.status for d in group} == {Status.DEFERRED_RESERVED}
    wait_redis_time(client, group[0].slot_us)
    assert run([req(f"b{i}") for i in range(8)]) == [Status.ADMITTED_RESERVED] * 8
    log_before = client.zrange(redis_keys.limit_slots("global"), 0, -1, withscores=True)
    duplicate = limiter.decide(req("b3"))
    assert duplicate.status is Status.IN_FLIGHT and not duplicate.allowed
    assert client.zrange(redis_keys.limit_slots("global"), 0, -1, withscores=True) == log_before
    run([req("b8"), req("b9"), req("b10"), req("b11"), req("b12"), req("new")])
    limiter.mark_forwarded([req("b3")], 60)
    assert limiter.decide(req("b3")).status is Status.DUPLICATE
    counts = Counter(identity for identity, _ in forwards)
    assert max(counts.values()) == 1, "a job was admitted twice"
    assert max_in_window([at for _, at in forwards], 2_000_000) <= 10


def test_limiter_failed_send_redelivery_goes_without_a_second_slot(client: redis.Redis) -> None:
    limiter = Limiter(client, parse_limits("global=2/10s"))
    first = limiter.decide(req("x"))
    assert first.status is Status.ADMITTED
    limiter.send_failed([req("x")])
    assert client.zcard(redis_keys.limit_slots("global")) == 1
    again = limiter.decide(req("x"))
    assert again.status is Status.ADMITTED_RESERVED and again.slot_us == first.now_us
    assert client.zcard(redis_keys.limit_slots("global")) == 1  # its own entry moved, none added
    assert limiter.decide(req("y")).status is Status.ADMITTED
    assert limiter.decide(req("z")).status is Status.DEFERRED_RESERVED


def test_limiter_lost_state_of_admitted_job_neither_frees_nor_takes_a_slot(client: redis.Redis) -> None:
    limiter = Limiter(client, parse_limits("global=1/10s"))
    assert limiter.decide(req("x")).status is Status.ADMITTED
    client.delete(redis_keys.gate_job("x"))  # its state expired (or a failover lost that key)
    again = limiter.decide(req("x"))  # not known forwarded: it may go again (the FIFO dedup id / idempotency)
    assert again.status is Status.ADMITTED_RESERVED
    assert client.zcard(redis_keys.limit_slots("global")) == 1  # its own entry moved, none added
    assert not limiter.decide(req("y")).allowed, "the admission was freed"


def test_limiter_lost_state_in_a_batch_neither_frees_nor_takes_a_slot(client: redis.Redis) -> None:
    """The same inside a batch whose new jobs share the log, written in one ZADD after one ZMSCORE found the
    leftover (decide.lua, pend): the leftover moves its own entry, the others take one each."""
    limiter = Limiter(client, parse_limits("global=3/10s"))
    assert limiter.decide(req("x")).status is Status.ADMITTED
    client.delete(redis_keys.gate_job("x"))
    decisions = limiter.decide_batch([req("a"), req("x"), req("b")])
    assert [d.status for d in decisions] == [Status.ADMITTED, Status.ADMITTED_RESERVED, Status.ADMITTED]
    assert client.zcard(redis_keys.limit_slots("global")) == 3
    assert not limiter.decide(req("y")).allowed, "the admission was freed"


# ---- the property test --------------------------------------------------------------------------------------

N, W_US = 2, 300_000
STALL_MS = 120


@dataclass
class FakeQueues:
    """The gate's `Sender` seam: an ingress queue that redelivers at chosen times, a FIFO queue that drops a
    deduplication id it has seen (SQS FIFO keeps ids 5 minutes; this run is shorter)."""

    pauser: redis.Redis
    ingress: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    fifo: list[tuple[str, int]] = field(default_factory=list)
    fifo_ids: set[str] = field(default_factory=set)
    fail_send: set[str] = field(default_factory=set)  # identities whose next FIFO send fails
    stall_on_send: set[str] = field(default_factory=set)  # identities whose FIFO send is followed by a stall
    # identity -> a delivery of its duplicate, made while its first copy's FIFO send is in flight (by a second
    # gate sharing the Redis: the race of issue 8)
    during_send: dict[str, Any] = field(default_factory=dict)
    seq: itertools.count[int] = field(default_factory=itertools.count)

    def push(self, record: dict[str, Any], after_s: float) -> None:
        heapq.heappush(self.ingress, (time.monotonic() + after_s, next(self.seq), record))

    def send(self, queue_url: str, messages: Sequence[Outgoing]) -> set[str]:
        failed: set[str] = set()
        for m in messages:
            if queue_url == "fifo":
                assert m.identity is not None
                if m.identity in self.fail_send:
                    self.fail_send.discard(m.identity)
                    failed.add(m.record_id)
                    continue
                if m.dedup_id not in self.fifo_ids:
                    assert m.dedup_id is not None
                    self.fifo_ids.add(m.dedup_id)
                    at = datetime.fromisoformat(m.attributes["rate_limit_timestamp"][1]).timestamp()
                    self.fifo.append((m.identity, round(at * 1e6)))
                if m.identity in self.during_send:
                    self.during_send.pop(m.identity)()
                if m.identity in self.stall_on_send:
                    self.stall_on_send.discard(m.identity)
                    self.pauser.execute_command("CLIENT", "PAUSE", STALL_MS, "ALL")
            elif queue_url == "ingress":
                # A deferred copy: back after a tenth of its DelaySeconds (any return time is fair game:
                # early returns, on time or late after a sleep step).
                attrs = {k: {"stringValue": v} for k, (_, v) in m.attributes.items()}
                self.push({"messageId": f"m{next(self.seq)}", "body": m.body, "messageAttributes": attrs,
                           "attributes": {}}, m.delay_s / 10)
        return failed


def _gate(client_url: str, queues: FakeQueues) -> Gate:
    gate_settings = GateSettings(
        workflows_queue_url="fifo", ingress_queue_url="ingress", ingress_dlq_url="dlq", rate_limits="global=2/0.3s",
        rate_hold_max_s=0.2, rate_hold_budget_s=0.4, redis_backoff_base_s=1, redis_backoff_max_s=1,
    )  # type: ignore[call-arg]
    fast = redis.Redis.from_url(client_url, socket_timeout=0.05, socket_connect_timeout=0.05)
    limiter = Limiter(fast, parse_limits("global=2/0.3s"), settle_s=0.5, slot_guard_ms=30)
    return Gate(gate_settings, limiter, queues)  # type: ignore[arg-type]


JOBS = 8
steps_strategy = st.lists(st.one_of(
    st.tuples(st.just("new"), st.integers(0, JOBS - 1)),
    st.tuples(st.just("new"), st.integers(0, JOBS - 1)),
    st.tuples(st.just("dup_in_flight"), st.integers(0, JOBS - 1)),
    st.tuples(st.just("duplicate"), st.integers(0, JOBS - 1)),
    st.tuples(st.just("due"), st.just(0)),
    st.tuples(st.just("sleep"), st.integers(50, 400)),
    st.tuples(st.just("sleep"), st.integers(50, 400)),
    st.tuples(st.just("expire"), st.integers(0, JOBS - 1)),
    st.tuples(st.just("stall_decide"), st.just(0)),
    st.tuples(st.just("stall_mark"), st.integers(0, JOBS - 1)),
    st.tuples(st.just("fail_send"), st.integers(0, JOBS - 1)),
    st.tuples(st.just("dup_in_flight"), st.integers(0, JOBS - 1)),
), min_size=1, max_size=24)


@pytest.mark.timeout(300)
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=steps_strategy)
@example(steps=[("new", i) for i in range(6)] + [("sleep", 200)] * 5 + [("due", 0)])  # late returns, together
@example(steps=[("new", 0), ("new", 1), ("new", 2), ("dup_in_flight", 3), ("new", 3), ("new", 4), ("new", 5)])
@example(steps=[("new", 0), ("stall_mark", 1), ("new", 1), ("duplicate", 1), ("new", 2), ("sleep", 600),
                ("duplicate", 1), ("fail_send", 3), ("new", 3), ("expire", 2), ("duplicate", 2), ("new", 4)])
def test_gate_any_interleaving_keeps_window_on_forwards_and_forwards_each_job_once(
    redis_url: str, steps: list[tuple[str, int]]
) -> None:
    control = redis.Redis.from_url(redis_url)
    control.flushdb()
    control.set(redis_keys.LIMITER_EPOCH, "0")
    queues = FakeQueues(pauser=control)
    gate, other_gate = _gate(redis_url, queues), _gate(redis_url, queues)
    bodies = {k: json.dumps(make_job(creator_id=f"creator-{k % 2}")) for k in range(JOBS)}
    sent: set[int] = set()

    def deliver(record: dict[str, Any], by: Gate = gate) -> None:
        # A record the gate reports as failed stays on the queue: SQS redelivers it (after its visibility).
        if by.process([record]):
            queues.push(record, 0.3)

    def identity(k: int) -> str:
        return f"cid:{json.loads(bodies[k])['metadata']['correlation_id']}"

    def original(k: int) -> dict[str, Any]:
        return {"messageId": f"origin-{k}", "body": bodies[k], "messageAttributes": {}, "attributes": {}}

    def deliver_due() -> None:
        while queues.ingress and queues.ingress[0][0] <= time.monotonic():
            deliver(heapq.heappop(queues.ingress)[2])

    for action, k in steps:
        if action == "new":
            sent.add(k)
            deliver(original(k))
        elif action == "duplicate" and k in sent:
            deliver(original(k))  # SQS delivers the original message a second time, at any moment
        elif action == "due":
            deliver_due()
        elif action == "sleep":
            time.sleep(k / 1000)
        elif action == "expire":
            control.pexpire(redis_keys.gate_job(identity(k)), 1)
        elif action == "stall_decide":
            control.execute_command("CLIENT", "PAUSE", STALL_MS, "ALL")
            if sent:
                deliver(original(min(sent)))
        elif action == "stall_mark":
            queues.stall_on_send.add(identity(k))
        elif action == "fail_send":
            queues.fail_send.add(identity(k))
        elif action == "dup_in_flight":
            queues.during_send[identity(k)] = lambda k=k: deliver(original(k), other_gate)

    deadline = time.monotonic() + 60
    while queues.ingress and time.monotonic() < deadline:
        time.sleep(max(0.0, min(0.05, queues.ingress[0][0] - time.monotonic())))
        deliver_due()
    assert not queues.ingress, "jobs still waiting after 60 s"

    forwarded = Counter(identity for identity, _ in queues.fifo)
    expected = {identity(k) for k in sent}
    assert set(forwarded) == expected, "a job was lost"
    assert max(forwarded.values(), default=1) == 1, "a job reached the FIFO queue twice"
    assert max_in_window([at for _, at in queues.fifo], W_US) <= N
