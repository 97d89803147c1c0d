"""The gate's live state for `huntazectl status`, read from the Redis the gate itself uses.

Called by `controller.oncall.collect` once per refresh, with the gate function's environment (its
``REDIS_URL``, ``HUNTAZE_RATE_LIMITS``, ``HUNTAZE_RATE_ALGORITHM`` and AUTH secret, read as the gate reads
them). Key names come from `common.redis_keys`; what each key means comes from `gate/decide.lua`. The limits'
format (``scope=N/W``, gate/settings.py) is parsed here rather than by importing the gate: the controller does
not import the programs it deploys, and the gate's pydantic settings cost a cold `status` about 0.1 s (a test
keeps both parsers equal).

- a ``window`` limit is one sorted set per limit value (``huntaze:v3:limit:{scope}[:{value}]:slots``) holding
  real admissions and reserved slots, scored in us. What the limiter counts against N "now" is the entries in
  (now - W, now]; entries after now are slots reserved for deferred jobs.
- a ``token_bucket`` limit is a hash (``tokens``, ``timestamp``); tokens below zero are reserved slots.
- the breaker's ``open`` key exists only while open (PTTL = time left); its ``state`` hash keeps the rest.
- the limiter epoch: missing means Redis lost the limiter's memory; a non-zero value is when that was noticed,
  and no limit admits before it + W.
- each creator's order line (``huntaze:v3:gate:order:{creator}``, a sorted set of the jobs the gate knows of and
  has not forwarded, decide.lua I4) and each job's state (``huntaze:v3:gate:job:{identity}``: ``r`` reserved,
  ``a`` admitted, ``f`` forwarded). A job waits in its line until it is forwarded; only the line's head can be
  admitted (being sent), so a line's waiting jobs are its size, less its head when that is not reserved.

Scoped limits (creator, user, action) have one key per value; their keys expire a minute after their last
window, so a bounded SCAN finds the values active now. A keyspace larger than the scan budget is reported as
``partial`` rather than read whole. Redis is read with 0.5 s timeouts and no retries: a slow Redis is reported
unreachable, as the gate would treat it. One refresh costs about four round trips plus the scan.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from common import redis_keys as keys

TIMEOUT_S = 0.5
SCAN_COUNT = 2000  # keys Redis examines per SCAN round trip
SCAN_ROUNDS = 10  # at most this many round trips per scoped limit; beyond, the scope is reported partial
BUSIEST = 3  # values of a scoped limit shown, fullest first
DEFAULT_LIMITS = "global=10/60s"
SCOPES = ("global", "creator", "user", "action")
WINDOW, TOKEN_BUCKET = "window", "token_bucket"
_UNITS_MS = {"ms": 1, "s": 1000, "": 1000, "m": 60_000, "h": 3_600_000}
_LIMIT_RE = re.compile(r"^\s*(\w+)\s*=\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


@dataclass(frozen=True)
class LimitSpec:
    """One of the gate's limits: at most `limit` admissions per `window_ms` for each value of `scope`."""

    scope: str
    limit: int
    window_ms: int


def parse_limits(text: str) -> tuple[LimitSpec, ...]:
    """``global=10/60s,creator=3/1m`` -> limits, as gate.settings.parse_limits reads them; ValueError otherwise."""
    specs = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _LIMIT_RE.match(part)
        if match is None or match.group(1) not in SCOPES:
            raise ValueError(f"{part!r} is not scope=N/W with scope one of {list(SCOPES)} (e.g. global=10/60s)")
        scope, count, window, unit = match.groups()
        spec = LimitSpec(scope, int(count), round(float(window) * _UNITS_MS[unit or ""]))
        if spec.limit < 1 or spec.window_ms < 1:
            raise ValueError(f"{part!r}: N and W must be at least 1")
        specs.append(spec)
    if not specs or len({s.scope for s in specs}) != len(specs):
        raise ValueError(f"{text!r}: at least one limit, each scope once")
    return tuple(specs)


@dataclass(frozen=True)
class Usage:
    """One limit value's use of its window: taken in (now - W, now], and reserved after now."""

    value: str | None
    taken: int
    reserved_ahead: int
    frees_in_s: float | None = None  # when full: until the oldest entry leaves the window

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "admitted_in_window": self.taken, "reserved_ahead": self.reserved_ahead,
                "frees_in_s": self.frees_in_s}


def connect(function_env: dict[str, str]) -> tuple[redis.Redis | None, str | None]:
    """A client for the gate's Redis (its URL and AUTH token, as the gate reads them), or why there is none."""
    url = os.environ.get("REDIS_URL") or function_env.get("REDIS_URL") or function_env.get("HUNTAZE_REDIS_URL")
    if not url:
        return None, "no REDIS_URL (set it, or run where the gate's function configuration is readable)"
    extra: dict[str, Any] = {}
    secret_id = function_env.get("HUNTAZE_REDIS_AUTH_SECRET_ID")
    if secret_id and not os.environ.get("REDIS_URL"):
        try:
            token = _auth_token(secret_id)
        except Exception as exc:
            return None, f"cannot read the AUTH token secret {secret_id}: {type(exc).__name__}"
        if token:
            extra["password"] = token
    return redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S,
                                retry_on_timeout=False, **extra), None


def _auth_token(secret_id: str) -> str | None:
    """The ``{"token": ...}`` secret the gate reads at cold start (gate.limiter.redis_auth_token); never shown."""
    from common.aws import client

    secret = client("secretsmanager").get_secret_value(SecretId=secret_id)
    token = json.loads(secret["SecretString"]).get("token")
    return str(token) if token else None


def collect_gate(function_env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"redis_reachable": False, "limits": [], "breaker": {"state": "unknown"}}
    algorithm = function_env.get("HUNTAZE_RATE_ALGORITHM") or WINDOW
    try:
        limits = parse_limits(function_env.get("HUNTAZE_RATE_LIMITS") or DEFAULT_LIMITS)
        if algorithm not in (WINDOW, TOKEN_BUCKET):
            raise ValueError(f"HUNTAZE_RATE_ALGORITHM {algorithm!r} is not {WINDOW} or {TOKEN_BUCKET}")
    except ValueError as exc:
        out["limits_error"] = f"the gate's limiter settings do not parse: {exc}"
        limits = ()
    out["algorithm"] = algorithm
    r, why = connect(function_env)
    if r is None:
        out["redis_error"] = why
        return out
    try:
        now_us = _now_us(r)
        out["redis_reachable"] = True
        out["limits"] = [read_limit(r, spec, algorithm, now_us) for spec in limits]
        out["breaker"] = read_breaker(r)
        out["limiter_memory"] = read_epoch(r, limits, now_us)
        out["order_lines"] = read_order_lines(r)
    except redis.RedisError as exc:
        out["redis_error"] = f"{type(exc).__name__}: {mask(str(exc))}"
    finally:
        r.close()
    return out


def _now_us(r: redis.Redis) -> int:
    seconds, micros = r.time()
    return int(seconds) * 1_000_000 + int(micros)


# --- limits ------------------------------------------------------------------------------------------------------

def read_limit(r: redis.Redis, spec: LimitSpec, algorithm: str, now_us: int) -> dict[str, Any]:
    """One configured limit: for ``global`` its one key; for a scoped limit, its busiest values now."""
    row: dict[str, Any] = {"scope": spec.scope, "limit": spec.limit, "window_s": spec.window_ms / 1000}
    if spec.scope == "global":
        values: dict[str | None, str] = {None: _key(algorithm, keys.limit_name("global"))}
        partial = False
    else:
        values, partial = _scan_values(r, spec.scope, algorithm)
    reader = _window_usage if algorithm == WINDOW else _bucket_usage
    usages = reader(r, spec, values, now_us)
    active = [u for u in usages if u.taken or u.reserved_ahead]
    busiest = sorted(active, key=lambda u: (-u.taken, -u.reserved_ahead, u.value or ""))
    top = busiest[0] if busiest else Usage(None, 0, 0)
    row |= {"admitted_in_window": top.taken, "reserved_ahead": sum(u.reserved_ahead for u in usages),
            "frees_in_s": top.frees_in_s}
    if spec.scope != "global":
        row |= {"busiest": top.value, "values_active": len(active),
                "values_at_limit": sum(1 for u in active if u.taken >= spec.limit),
                "top": [u.as_dict() for u in busiest[:BUSIEST]], "partial": partial}
    return row


def _key(algorithm: str, name: str) -> str:
    return keys.limit_slots(name) if algorithm == WINDOW else keys.limit_bucket(name)


def _scan_values(r: redis.Redis, scope: str, algorithm: str) -> tuple[dict[str | None, str], bool]:
    """{value: key} for the scope's keys (``creator:c1`` -> ``c1``), at most SCAN_ROUNDS round trips."""
    found, partial = _scan_keys(r, _key(algorithm, keys.limit_name(scope, "\0")))
    values: dict[str | None, str] = {value: key for value, key in found.items()}
    return values, partial


def _scan_keys(r: redis.Redis, probe: str) -> tuple[dict[str, str], bool]:
    """{variable part: key} for every key shaped like ``probe`` (a key built by a `common.redis_keys` helper with
    ``"\0"`` for its variable part), at most SCAN_ROUNDS round trips; True when the budget ran out first."""
    head, tail = probe.split("\0")
    pattern = _glob_escape(head) + "*" + _glob_escape(tail)
    found: dict[str, str] = {}
    cursor = 0
    for _ in range(SCAN_ROUNDS):
        cursor, batch = r.scan(cursor=cursor, match=pattern, count=SCAN_COUNT)
        for raw in batch:
            key = text(raw)
            found[key[len(head):len(key) - len(tail)]] = key
        if int(cursor) == 0:
            return found, False
    return found, True


def _glob_escape(part: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", part)


def _window_usage(r: redis.Redis, spec: LimitSpec, values: dict[str | None, str], now_us: int) -> list[Usage]:
    w_us = spec.window_ms * 1000
    lo = f"({now_us - w_us}"
    with r.pipeline(transaction=False) as pipe:
        for key in values.values():
            pipe.zcount(key, lo, now_us)
            pipe.zcount(key, f"({now_us}", "+inf")
            pipe.zrangebyscore(key, lo, now_us, start=0, num=1, withscores=True)
        raw = pipe.execute()
    usages = []
    for i, value in enumerate(values):
        taken, ahead, oldest = int(raw[3 * i]), int(raw[3 * i + 1]), raw[3 * i + 2]
        frees = None
        if taken >= spec.limit and oldest:
            frees = round(max(0.0, (float(oldest[0][1]) + w_us - now_us) / 1e6), 1)
        usages.append(Usage(value, taken, ahead, frees))
    return usages


def _bucket_usage(r: redis.Redis, spec: LimitSpec, values: dict[str | None, str], now_us: int) -> list[Usage]:
    """The seed's bucket: tokens refilled to now (as decide.lua does); used = N - tokens, debt = reserved."""
    rate = spec.limit / (spec.window_ms / 1000)
    with r.pipeline(transaction=False) as pipe:
        for key in values.values():
            pipe.hmget(key, "tokens", "timestamp")
        raw = pipe.execute()
    usages = []
    for value, (tokens_raw, ts_raw) in zip(values, raw, strict=True):
        if tokens_raw is None or ts_raw is None:
            usages.append(Usage(value, 0, 0))
            continue
        tokens = min(float(spec.limit), float(tokens_raw) + max(0.0, now_us / 1e6 - float(ts_raw)) * rate)
        used = max(0, min(spec.limit, round(spec.limit - tokens)))
        frees = round((1 - tokens) / rate, 1) if tokens < 1 else None
        usages.append(Usage(value, used, math.ceil(-tokens) if tokens < 0 else 0, frees))
    return usages


# --- breaker and limiter memory ----------------------------------------------------------------------------------

def read_breaker(r: redis.Redis) -> dict[str, Any]:
    """Open while its ``open`` key exists (what the gate obeys); an expired key with ``state`` still open is
    half-open in effect: the gate forwards again and the scraper's next job is the probe (scraper/breaker.lua)."""
    with r.pipeline(transaction=False) as pipe:
        pipe.pttl(keys.breaker_open())
        pipe.get(keys.breaker_open())
        pipe.hgetall(keys.breaker_state())
        pttl, reason, raw_state = pipe.execute()
    state = {text(k): text(v) for k, v in raw_state.items()}
    opens = int(state.get("opens", 0) or 0)
    pttl = int(pttl)
    if pttl > 0 or pttl == -1:
        closes_in = round(pttl / 1000, 1) if pttl > 0 else None
        closes_at = datetime.fromtimestamp(datetime.now(UTC).timestamp() + closes_in, UTC).isoformat(
            timespec="seconds") if closes_in is not None else None
        return {"state": "open", "closes_in_s": closes_in, "closes_at": closes_at,
                "reason": text(reason) if reason else state.get("reason", ""), "opens": opens}
    current = state.get("state") or "closed"
    if current == "open":
        current = "half_open"
    return {"state": current, "failures": int(state.get("failures", 0) or 0), "opens": opens,
            "reason": state.get("reason", "") if current != "closed" else ""}


def read_epoch(r: redis.Redis, limits: tuple[LimitSpec, ...], now_us: int) -> dict[str, Any]:
    """Whether Redis still holds the limiter's memory; after a loss nothing is admitted for one W."""
    raw = r.get(keys.LIMITER_EPOCH)
    if raw is None:
        return {"state": "empty", "note": "no limiter epoch: the gate's next decision counts the last W as full"}
    epoch = int(float(text(raw)))
    widest = max((s.window_ms * 1000 for s in limits), default=0)
    if epoch and epoch + widest > now_us:
        return {"state": "recovering", "admits_from_in_s": round((epoch + widest - now_us) / 1e6, 1),
                "note": "Redis lost the limiter's memory; nothing is admitted until one window has passed"}
    return {"state": "ok"}


def read_order_lines(r: redis.Redis) -> dict[str, Any]:
    """Jobs waiting in their creator's order line (decide.lua I4), by a bounded SCAN of the order sets: two
    pipelined round trips after the scan (each line's size and head, then each head's state)."""
    lines, partial = _scan_keys(r, keys.gate_order("\0"))
    creators = list(lines)
    with r.pipeline(transaction=False) as pipe:
        for creator in creators:
            pipe.zcard(lines[creator])
            pipe.zrange(lines[creator], 0, 0)
        raw = pipe.execute()
    sizes = {c: int(raw[2 * i]) for i, c in enumerate(creators)}
    heads = {c: text(raw[2 * i + 1][0]) for i, c in enumerate(creators) if raw[2 * i + 1]}
    with r.pipeline(transaction=False) as pipe:
        for head in heads.values():
            pipe.get(keys.gate_job(head))
        states = dict(zip(heads, pipe.execute(), strict=True))
    # the head is admitted (being sent), forwarded or left over unless its state says reserved
    waiting = {c: n - (1 if c in heads and not text(states.get(c) or b"").startswith("r") else 0)
               for c, n in sizes.items()}
    busy = sorted(((c, n) for c, n in waiting.items() if n > 0), key=lambda cn: (-cn[1], cn[0]))
    return {"jobs_waiting": sum(n for _, n in busy), "creators_waiting": len(busy),
            "longest": [{"creator": c, "waiting": n} for c, n in busy[:BUSIEST]], "partial": partial}


def text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def mask(message: str) -> str:
    return re.sub(r"://[^@/\s]*@", "://***@", message)
