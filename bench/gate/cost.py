"""Redis cost per decision of the gate's limiter beside the plain sliding-log control (called by `bench.gate`).

The method of /work/shared/peers/limiters (test c): Redis' own time in EVALSHA/EVAL from ``INFO
commandstats`` (usec, which includes every command the script runs) divided by the decisions made, after
``CONFIG RESETSTAT``, in the same run on the same redis-server. Peers are interleaved round by round so that
background load hits both alike.

- "never runs out": a limit of 100,000 per 60 s (the most a LimitSpec allows), never reached here, as the
  peers' throughput test (1e9); every decision admits.
- backlog B: the production limit (10 per 60 s) with B jobs already holding reserved slots (the reservation
  horizon is raised so that all B are in Redis); each measured decision is a new job that reserves behind them.
  The control at the same limit rejects (its cheapest path: TIME, ZREMRANGEBYSCORE, ZCARD) and has no backlog to
  carry. That is the issue's measure and it is printed first. Beside it, on the same unit of work as the gate's
  (a decision that writes), the control's admit path in the same round: a limit that never runs out on a key of
  its own (TIME, ZREMRANGEBYSCORE, ZCARD, ZADD, PEXPIRE).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from gate.limiter import Limiter, LimitRequest
from gate.settings import parse_limits

# The control of /work/shared/peers/limiters/bench.py (REF_SLIDING_LOG_LUA), verbatim.
CONTROL_LUA = r"""
local limit = tonumber(ARGV[1])
local win = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - win))
if redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(win / 1000) + 1000)
return 1
"""


def eval_usec(client: redis.Redis) -> tuple[int, int, int]:
    """EVAL/EVALSHA usec and calls, and the commands the scripts ran (every other command but the counting)."""
    stats = client.info("commandstats")
    usec = sum(int(v["usec"]) for k, v in stats.items() if k.startswith("cmdstat_eval"))
    calls = sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_eval"))
    inner = sum(int(v["calls"]) for k, v in stats.items()
                if not k.startswith(("cmdstat_eval", "cmdstat_config", "cmdstat_info", "cmdstat_script")))
    return usec, calls, inner


COMMANDS: dict[str, float] = {}  # label -> Redis commands per decision, from the last round that measured it


def measure(client: redis.Redis, decisions: int, run: Callable[[int], object], label: str = "") -> tuple[float, float]:
    """(Redis usec, client wall ms per call) for `decisions` calls of `run`; the commands each decision ran go to
    COMMANDS[label] (deterministic, unlike usec: tests/gate/test_cost.py bounds them)."""
    client.config_resetstat()
    started = time.perf_counter()
    for i in range(decisions):
        run(i)
    wall = (time.perf_counter() - started) / max(1, decisions) * 1e3
    usec, _, inner = eval_usec(client)
    if label:
        COMMANDS[label] = inner
    return usec, wall


def request(name: str) -> LimitRequest:
    """A job of its own creator: one creator's jobs queue behind each other until the gate marks the previous
    one forwarded (decide.lua, I4), and nothing is forwarded here, so a shared creator would measure that queue,
    not a decision."""
    return LimitRequest(name, f"creator-{name}", "user-1", "scrape_profile")


def fill_backlog(limiter: Limiter, backlog: int) -> None:
    for start in range(0, backlog, 500):
        limiter.decide_batch([request(f"backlog-{i}") for i in range(start, min(backlog, start + 500))])


def one_round(client: redis.Redis, control: Any, backlog: int, singles: int) -> dict[str, float]:
    """Gate single, gate batch of 10 and the control, at one backlog, on a flushed Redis."""
    limits = "global=100000/60s" if backlog == 0 else "global=10/60s"
    client.flushall()
    limiter = Limiter(client, parse_limits(limits), horizon_s=30 * 86_400)
    limiter.declare_empty()
    fill_backlog(limiter, backlog)
    run_id = uuid.uuid4().hex[:6]
    out: dict[str, float] = {}
    usec, wall = measure(client, singles, lambda i: limiter.decide(request(f"s{run_id}-{i}")), f"{backlog} single")
    out["gate, single"], out["gate, single: client ms per call"] = usec / singles, wall
    usec, wall = measure(client, singles // 10, lambda i: limiter.decide_batch(
        [request(f"b{run_id}-{i}-{k}") for k in range(10)]), f"{backlog} batch")
    out["gate, batch of 10"], out["gate, batch of 10: client ms per call"] = usec / singles, wall
    n = 100_000 if backlog == 0 else 10
    usec, _ = measure(client, singles, lambda i: control(keys=[f"control-{run_id}"], args=[n, 60_000_000, f"c{i}"]),
                      f"{backlog} control")
    out["control (plain sliding log)"] = usec / singles
    if backlog:
        usec, _ = measure(client, singles, lambda i: control(keys=[f"control-admit-{run_id}"],
                                                             args=[1_000_000_000, 60_000_000, f"c{i}"]),
                          f"{backlog} admitting")
        out[ADMITTING] = usec / singles
    return out


def bench_cost(url: str, rounds: int = 3, singles: int = 2000) -> None:
    print("\n1. Redis time per decision (INFO commandstats EVALSHA usec / decisions), gate vs the plain sliding-log "
          f"control of peers/limiters, same redis-server, {rounds} interleaved rounds, median (all rounds)")
    client = redis.Redis.from_url(url)
    control = client.register_script(CONTROL_LUA)
    rows: dict[tuple[int, str], list[float]] = {}
    for _ in range(rounds):
        for backlog in BACKLOGS:
            for name, value in one_round(client, control, backlog, singles).items():
                rows.setdefault((backlog, name), []).append(value)

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    for backlog in BACKLOGS:
        label = "limit never runs out (100000/60s)" if backlog == 0 else f"10/60s, backlog {backlog}"
        print(f"  {label}")
        for (b, name), values in rows.items():
            if b == backlog:
                unit = "ms" if "client" in name else "us per decision"
                print(f"    {name:<38} {median(values):8.2f} {unit}  ({' / '.join(f'{v:.1f}' for v in values)})")
        ctrl = median(rows[(backlog, "control (plain sliding log)")])
        single, batch = median(rows[(backlog, "gate, single")]), median(rows[(backlog, "gate, batch of 10")])
        print(f"    ratio to control: single {single / ctrl:.2f}x, batch of 10 {batch / ctrl:.2f}x  (bar: 1.5x)")
        per = {k.split(" ", 1)[1]: v / singles for k, v in COMMANDS.items() if k.startswith(f"{backlog} ")}
        print(f"    Redis commands per decision: gate single {per['single']:.2f}, batch of 10 {per['batch']:.2f}; "
              f"control {per['control']:.2f}" + (f" (admitting {per['admitting']:.2f})" if backlog else ""))
        if (backlog, ADMITTING) in rows:
            admitting = median(rows[(backlog, ADMITTING)])
            print(f"    beside, ratio to the control's admit path (a write, as the gate's): single "
                  f"{single / admitting:.2f}x, batch of 10 {batch / admitting:.2f}x")


BACKLOGS = (0, 1_000, 10_000)
ADMITTING = "control, admitting (never runs out)"
