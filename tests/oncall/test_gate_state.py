"""The gate section of `huntazectl status`, read from a real redis-server holding the state the gate's own
`Limiter` (gate/limiter.py, decide.lua) and the scraper's own `CircuitBreaker` wrote.

Expected figures come from the limiter's decisions (what it admitted and reserved), not from hand-written keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import yaml

from common.aws import client
from controller.cli import main as huntazectl
from controller.oncall import gate_state
from controller.oncall.gate_state import collect_gate
from gate.limiter import ALLOWED, Decision, Limiter, LimitRequest, Status
from gate.settings import Algorithm, parse_limits
from localplane.services import RedisServer

from .conftest import REPO, wait_until


@pytest.mark.parametrize("text", ["global=10/60s", "global=6/10s", "global=10/60s,creator=3/1m",
                                  " user = 5 / 500ms , action=2/1.5h", "creator=1/2"])
def test_gate_state_reads_limits_as_the_gate_parses_them(text: str) -> None:
    ours = [(s.scope, s.limit, s.window_ms) for s in gate_state.parse_limits(text)]
    assert ours == [(s.scope.value, s.limit, s.window_ms) for s in parse_limits(text)]


@pytest.mark.parametrize("text", ["", "global=0/60s", "bogus=1/1s", "global=1/1s,global=2/2s", "global=10 per min"])
def test_gate_state_rejects_limits_the_gate_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_limits(text)
    with pytest.raises(ValueError):
        gate_state.parse_limits(text)


def job(n: int, creator: str, action: str = "scrape_profile") -> LimitRequest:
    return LimitRequest(f"job-{n}", creator, "fan_1", action)


def run_gate(limiter: Limiter, jobs: list[LimitRequest]) -> list[Decision]:
    """One decision per job, and admitted jobs marked forwarded, as gate.batch does after each send."""
    decisions = []
    for request in jobs:
        decision = limiter.decide(request)
        if decision.allowed:
            limiter.mark_forwarded([request], ttl_s=600)
        decisions.append(decision)
    return decisions


def scope_limits(env: dict[str, str]) -> dict[str, dict[str, object]]:
    return {lim["scope"]: lim for lim in collect_gate(env)["limits"]}


def test_gate_state_reports_each_scope_against_its_limit(redis_url: str) -> None:
    limits = "global=6/60s,creator=2/60s,action=5/60s"
    limiter = Limiter(redis.Redis.from_url(redis_url), parse_limits(limits))
    assert limiter.declare_empty()
    jobs = [job(i, creator) for i, creator in enumerate(["c_a", "c_a", "c_a", "c_b", "c_b", "c_c", "c_d", "c_e"])]
    jobs.append(job(99, "c_f", action="send_message"))
    decisions = run_gate(limiter, jobs)
    admitted = [j for j, d in zip(jobs, decisions, strict=True) if d.status in ALLOWED]
    reserved = [j for j, d in zip(jobs, decisions, strict=True) if d.status is Status.DEFERRED_RESERVED]
    assert admitted and reserved  # the staging really throttled some jobs

    got = scope_limits({"HUNTAZE_RATE_LIMITS": limits})

    assert got["global"]["admitted_in_window"] == len(admitted) <= 6
    assert got["global"]["reserved_ahead"] == len(reserved)
    per_creator = Counter(j.creator_id for j in admitted)
    creator = got["creator"]
    assert creator["admitted_in_window"] == max(per_creator.values()) == 2
    assert creator["busiest"] in {c for c, n in per_creator.items() if n == 2}
    assert creator["values_at_limit"] == sum(1 for n in per_creator.values() if n >= 2)
    assert creator["values_active"] == len({j.creator_id for j in admitted + reserved})
    assert creator["frees_in_s"] is not None and 0 < creator["frees_in_s"] <= 60
    per_action = Counter(j.action for j in admitted)
    action = got["action"]
    assert action["busiest"] == "scrape_profile"
    assert action["admitted_in_window"] == per_action["scrape_profile"]
    assert {t["value"] for t in action["top"]} == {j.action for j in admitted + reserved}


def test_gate_state_token_bucket_counts_tokens_used_and_debt(redis_url: str) -> None:
    limits = "global=3/60s"
    limiter = Limiter(redis.Redis.from_url(redis_url), parse_limits(limits), Algorithm.TOKEN_BUCKET)
    assert limiter.declare_empty()
    decisions = run_gate(limiter, [job(i, f"c_{i}") for i in range(5)])
    admitted = sum(1 for d in decisions if d.allowed)

    row = collect_gate({"HUNTAZE_RATE_LIMITS": limits, "HUNTAZE_RATE_ALGORITHM": "token_bucket"})["limits"][0]

    assert admitted == 3 and row["admitted_in_window"] == 3
    assert row["reserved_ahead"] == sum(1 for d in decisions if d.status is Status.DEFERRED_RESERVED) > 0
    assert row["frees_in_s"] is not None and row["frees_in_s"] > 0


def test_gate_state_lost_limiter_memory_says_when_the_gate_admits_again(redis_url: str) -> None:
    limits = "global=6/60s"
    r = redis.Redis.from_url(redis_url)
    assert collect_gate({"HUNTAZE_RATE_LIMITS": limits})["limiter_memory"]["state"] == "empty"
    decision = Limiter(r, parse_limits(limits)).decide(job(1, "c_a"))  # no declare_empty: memory counts as lost
    assert not decision.allowed
    memory = collect_gate({"HUNTAZE_RATE_LIMITS": limits})["limiter_memory"]
    assert memory["state"] == "recovering" and 0 < memory["admits_from_in_s"] <= 60


def test_gate_state_breaker_open_says_when_it_closes_then_half_open(redis_url: str) -> None:
    from redis.asyncio import Redis

    from scraper.breaker import CircuitBreaker

    async def trip() -> None:  # the scraper's own breaker, as its runner records 429s that outlived retries
        r = Redis.from_url(redis_url)
        breaker = CircuitBreaker(r, "onlyfans", threshold=2, open_s=6)
        for _ in range(2):
            await breaker.record_failure("429 from target: Too Many Requests")
        await r.aclose()

    asyncio.run(trip())
    breaker = collect_gate({})["breaker"]
    assert breaker["state"] == "open" and breaker["opens"] == 1
    assert 0 < breaker["closes_in_s"] <= 6 and breaker["closes_at"]
    assert "429" in breaker["reason"]
    # the open key's TTL ends it: the gate forwards again, the scraper's next job is the probe
    wait_until(lambda: collect_gate({})["breaker"]["state"] != "open", 30, "the breaker's open period to end")
    assert collect_gate({})["breaker"]["state"] == "half_open"


def test_gate_state_counts_jobs_waiting_in_each_creators_order_line(redis_url: str) -> None:
    """The per-creator order sets and job states written by the gate's own limiter (decide.lua I4): reserved jobs
    wait in their creator's line; a forwarded job has left it; an admitted head still being sent is not waiting."""
    r = redis.Redis.from_url(redis_url)
    limiter = Limiter(r, parse_limits("global=3/60s"))
    assert limiter.declare_empty()
    jobs = [job(i, creator) for i, creator in enumerate(["c_a", "c_b", "c_a", "c_a", "c_b", "c_c", "c_a"])]
    decisions = run_gate(limiter, jobs)  # admitted jobs are marked forwarded: they leave their line
    sending = job(50, "c_d")  # admitted, its send under way: heads its line, not marked forwarded yet
    wide = Limiter(r, parse_limits("global=100/60s"))
    assert wide.decide(sending).allowed
    behind = wide.decide(job(51, "c_d"))  # its creator's next job waits behind it
    reserved = Counter(j.creator_id for j, d in zip(jobs, decisions, strict=True)
                       if d.status is Status.DEFERRED_RESERVED)
    reserved["c_d"] += behind.status is Status.DEFERRED_RESERVED
    assert sum(reserved.values()) >= 4 and reserved["c_d"] == 1  # the staging really deferred jobs

    lines = collect_gate({"HUNTAZE_RATE_LIMITS": "global=3/60s"})["order_lines"]

    assert lines["jobs_waiting"] == sum(reserved.values())
    assert lines["creators_waiting"] == len(+reserved)
    assert lines["longest"][0] == {"creator": reserved.most_common(1)[0][0], "waiting": reserved.most_common(1)[0][1]}
    assert lines["partial"] is False
    wide.mark_forwarded([sending], ttl_s=600)  # the send is done: the job behind it heads the line, still waiting
    assert collect_gate({})["order_lines"]["jobs_waiting"] == sum(reserved.values())


def test_gate_state_order_lines_beyond_the_scan_budget_are_reported_partial(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    limiter = Limiter(redis.Redis.from_url(redis_url), parse_limits("global=1/60s"))
    assert limiter.declare_empty()
    run_gate(limiter, [job(i, f"c_{i}") for i in range(30)])  # 29 creators each with one job in line
    monkeypatch.setattr(gate_state, "SCAN_COUNT", 2)
    monkeypatch.setattr(gate_state, "SCAN_ROUNDS", 2)
    lines = collect_gate({"HUNTAZE_RATE_LIMITS": "global=1/60s"})["order_lines"]
    assert lines["partial"] is True and lines["jobs_waiting"] < 29


def test_gate_state_redis_down_is_reported_unreachable_with_the_error(
        redis_factory: Callable[[], RedisServer], monkeypatch: pytest.MonkeyPatch) -> None:
    server = redis_factory()
    monkeypatch.setenv("REDIS_URL", server.url)
    assert collect_gate({})["redis_reachable"] is True
    server.close()
    gate = collect_gate({})
    assert gate["redis_reachable"] is False
    assert "ConnectionError" in gate["redis_error"] or "Timeout" in gate["redis_error"]


def gate_environment() -> dict[str, str]:
    """The production Function spec's limiter settings (manifests/gate.yaml)."""
    docs = list(yaml.safe_load_all((REPO / "manifests" / "gate.yaml").read_text()))
    spec = next(d for d in docs if d and d.get("kind") == "Function")["spec"]
    env = spec.get("environment") or spec.get("env") or {}
    return {k: str(v) for k, v in env.items() if k in ("HUNTAZE_RATE_LIMITS", "HUNTAZE_RATE_ALGORITHM")}


def test_status_shows_the_gate_limits_of_the_deployed_function(aws: str, redis_url: str, tmp_path: Path) -> None:
    """`huntazectl status` reads the limits from the deployed function's configuration (the production spec's),
    and the Redis state the gate's own limiter wrote: in `-o json` and in the table."""
    env = gate_environment()
    assert env["HUNTAZE_RATE_LIMITS"] == "global=10/60s"
    role = client("iam").create_role(RoleName="gate", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    import zipfile

    archive = tmp_path / "gate.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    client("lambda").create_function(FunctionName="huntaze-rate-limiter", Runtime="python3.12", Role=role,
                                     Handler="handler.handler", Code={"ZipFile": archive.read_bytes()},
                                     Environment={"Variables": env})
    limiter = Limiter(redis.Redis.from_url(redis_url), parse_limits(env["HUNTAZE_RATE_LIMITS"]))
    assert limiter.declare_empty()
    decisions = run_gate(limiter, [job(i, f"c_{i % 4}") for i in range(14)])

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        huntazectl(["status", "-o", "json"])
    gate = json.loads(out.getvalue())["gate"]
    assert gate["redis_reachable"] is True and "gate_function" not in json.loads(out.getvalue())["errors"]
    (row,) = gate["limits"]
    assert (row["scope"], row["limit"], row["window_s"]) == ("global", 10, 60)
    assert row["admitted_in_window"] == sum(1 for d in decisions if d.allowed) == 10
    assert row["reserved_ahead"] == sum(1 for d in decisions if d.status is Status.DEFERRED_RESERVED) == 4
    assert gate["deferred_in_order_lines"] == 4  # the reserved jobs wait in their creators' lines

    with contextlib.redirect_stdout(out := io.StringIO()):
        huntazectl(["status"])
    table = out.getvalue()
    assert "Gate limits (window)" in table and "10 / 60s" in table
    assert "4 in 4 creator line(s)" in table.replace("\n", " ")


def test_oncall_reads_the_gate_and_scraper_without_importing_them() -> None:
    """The controller deploys the gate and the scraper and reads their state (Redis keys, metrics, DLQ
    attributes) by their shared contracts in common/, never by importing them (STYLE: the programs do not import
    each other); a cold `status` also stays clear of their settings models."""
    import ast

    files = [*(REPO / "controller" / "oncall").glob("*.py"),
             *(REPO / "controller" / "commands" / name for name in ("status.py", "dlq.py"))]
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("gate", "scraper")]
    assert found == []
