"""What one decision costs Redis, counted in commands (``INFO commandstats``, deterministic, unlike µs): the fast
path and a backlog of 10,000 waiting jobs run the same few O(log n) commands (decide.lua, "Cost")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import yaml

from gate.limiter import Limiter, LimitRequest, Status
from gate.settings import parse_limits
from localplane.services import RedisServer

# A new job admitted now: the clock, one read of breaker/epoch/state/mark, the window count, its log entry, its
# creator's line (ZADD, then PEXPIRE NX says the line is new and gives it its TTL) and its state.
ADMITTED = Counter({"time": 1, "mget": 1, "zcount": 1, "zadd": 2, "pexpire": 1, "set": 1})
# A new job that reserves: the same, the rank of the N-th latest entry instead of the line check's answer.
RESERVED = ADMITTED + Counter({"zrevrange": 1})
# Past the reservation horizon: the reads, and ZSCORE (a leftover entry would make it a returning job); no write.
PAST_HORIZON = Counter({"time": 1, "mget": 1, "zcount": 1, "zrevrange": 1, "zscore": 1})
# A reserved job whose slot has come (here: the redelivery after a failed send): the clock, the MGET, the head of
# its creator's line, the window's count, its own entry moved to now, its state, and its place in line kept (NX).
RETURNING = Counter({"time": 1, "mget": 1, "zrange": 1, "zcount": 1, "zadd": 2, "set": 1})
BACKLOG = 10_000


def manifest_limits() -> str:
    """HUNTAZE_RATE_LIMITS of the gate's manifest (10 per 60 s)."""
    path = Path(__file__).resolve().parents[2] / "manifests" / "gate.yaml"
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        env = (doc or {}).get("spec", {}).get("environment", {})
        if "HUNTAZE_RATE_LIMITS" in env:
            return str(env["HUNTAZE_RATE_LIMITS"])
    raise AssertionError(f"{path}: no HUNTAZE_RATE_LIMITS in any document's spec.environment")


@pytest.fixture(scope="module")
def client() -> Iterator[redis.Redis]:
    """A Redis of this module's own: CONFIG RESETSTAT and the counts must see no other test's commands."""
    with RedisServer() as server:
        yield redis.Redis.from_url(server.url)


def commands(client: redis.Redis, run: Callable[[], object]) -> Counter[str]:
    """The commands `run` made Redis execute, by name, EVALSHA itself (and the counting) left out."""
    client.config_resetstat()
    run()
    stats = client.info("commandstats")
    skip = ("cmdstat_eval", "cmdstat_config", "cmdstat_info")
    return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if not k.startswith(skip)})


def req(identity: str) -> LimitRequest:
    return LimitRequest(identity, f"creator-of-{identity}", "u1", "scrape_profile")


def fresh(client: redis.Redis, **options: float) -> Limiter:
    client.flushall()
    limiter = Limiter(client, parse_limits(manifest_limits()), **options)  # type: ignore[arg-type]
    limiter.declare_empty()
    for i in range(2):  # the log is created, then known and marked: later calls skip its TTL (decide.lua, TTLs)
        limiter.decide(req(f"warm-{i}"))
    return limiter


def test_limiter_single_decision_on_the_fast_path_runs_seven_commands(client: redis.Redis) -> None:
    limiter = fresh(client)
    seen: list[Status] = []
    assert commands(client, lambda: seen.append(limiter.decide(req("new")).status)) == ADMITTED
    assert seen == [Status.ADMITTED]
    # The rest of the window in one batch: one count for all (then kept by the call's own adds), fewer per job.
    rest = [req(f"b{k}") for k in range(7)]
    batch = commands(client, lambda: seen.extend(d.status for d in limiter.decide_batch(rest)))
    assert seen[-7:] == [Status.ADMITTED] * 7
    assert batch["zcount"] == 1 and batch["zadd"] == 8 and batch.total() / 7 < ADMITTED.total(), batch
    # With the production order settle (1 s) a new job always reserves a slot one settle ahead: as many commands.
    settled = fresh(client, order_settle_s=1.0)
    assert commands(client, lambda: seen.append(settled.decide(req("settled")).status)) == ADMITTED
    assert seen[-1] is Status.DEFERRED_RESERVED


def test_limiter_returning_job_runs_seven_commands(client: redis.Redis) -> None:
    limiter = fresh(client)
    assert limiter.decide(req("job")).allowed
    limiter.send_failed([req("job")])
    seen: list[Status] = []
    assert commands(client, lambda: seen.append(limiter.decide(req("job")).status)) == RETURNING
    assert seen == [Status.ADMITTED_RESERVED]


def test_limiter_decision_costs_the_same_commands_at_a_backlog_of_10000(client: redis.Redis) -> None:
    """Every slot held in Redis (horizon raised, as bench.gate): a new job reserves behind 10,000 waiting ones
    with the commands it needs behind 10; a batch costs fewer per decision than single calls."""
    limiter = fresh(client, horizon_s=30 * 86_400)
    for i in range(8):  # the window full: the next job reserves
        limiter.decide(req(f"fill-{i}"))
    assert commands(client, lambda: limiter.decide(req("behind-10"))) == RESERVED
    for start in range(0, BACKLOG, 500):
        limiter.decide_batch([req(f"backlog-{i}") for i in range(start, start + 500)])
    seen: list[Status] = []
    assert commands(client, lambda: seen.append(limiter.decide(req("behind-10000")).status)) == RESERVED
    assert seen == [Status.DEFERRED_RESERVED]
    batch = commands(client, lambda: limiter.decide_batch([req(f"batch-{k}") for k in range(10)]))
    # One ZADD in the shared log for all ten (after one ZMSCORE), one per creator's line; TIME, MGET, the count,
    # the rank and the trim once: 37 commands, 3.7 per decision.
    assert batch["zadd"] == 11 and batch["zmscore"] == 1 and batch.total() == 37, batch


def test_limiter_decision_past_the_horizon_behind_10000_reads_five_commands_and_writes_nothing(
    client: redis.Redis,
) -> None:
    """At the default horizon (6 h) most of a 10,000 backlog at 10 per 60 s lies past it: a new job there is
    deferred without a slot, straight from the common path."""
    limiter = fresh(client)
    for start in range(0, BACKLOG, 500):
        limiter.decide_batch([req(f"backlog-{i}") for i in range(start, start + 500)])
    seen: list[Status] = []
    assert commands(client, lambda: seen.append(limiter.decide(req("past")).status)) == PAST_HORIZON
    assert seen == [Status.DEFERRED_UNRESERVED]
