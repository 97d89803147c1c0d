"""Every Redis key the gate and the scraper share, defined once, with the schema version in the name.

Called by `gate.limiter` (limiter windows, reservations, per-creator order, forwarded marks, the breaker flag it
reads), by `scraper.breaker` (the breaker it writes), `scraper.idempotency` (claims) and `scraper.platform_slot`
(the platform slot it takes from the same limiter). Nothing else builds these names.

Why a version: during a canary two gate versions (or a new scraper beside an old one) run side by side against
one Redis. A program only reads and writes keys of the schema it understands; a change of layout or meaning is a
new `SCHEMA`, so an old and a new program never misread each other's values. Programs of the same schema share
every limit, so the limit still holds across versions that share a schema. (Across a schema change the two
schemas keep separate windows: a deploy that changes `SCHEMA` must not run both schemas at full rate at once.)

Layout (``v3`` = `SCHEMA`):

- limiter, one sliding limit ("at most N in any W"), ``{limit}`` = ``scope`` or ``scope:value``:
  ``huntaze:v3:limit:{limit}:slots`` (ZSET, one per limit: real admission times, at most N inside any W, and
  slots reserved ahead for deferred jobs; score = time in us, member = the job's identity),
  ``huntaze:v3:limit:{limit}:bucket`` (HASH: the seed's token bucket, when that algorithm is selected),
  ``huntaze:v3:limit:{limit}:ttl`` (string, PX 59 s: the log's TTL was set less than that ago, so a decision
  need not set it again; decide.lua, TTLs);
- ``huntaze:v3:limit:epoch``: exists while Redis still holds the limiter's memory; missing = memory lost;
- ``huntaze:v3:gate:tickets`` (counter), ``huntaze:v3:gate:job:{identity}`` (one job's state: reserved or
  admitted), ``huntaze:v3:gate:order:{creator}`` (ZSET of a creator's waiting jobs by ticket),
  ``huntaze:v3:gate:fwd:{identity}`` (forwarded mark);
- ``huntaze:v3:breaker:{name}:open|state|probe``: the circuit breaker (the gate reads ``open`` only);
- ``huntaze:v3:scraper:idem:{identity}``: idempotency claims;
- ``huntaze:v3:platform:{limit}:log``: platform slots taken by scraper tasks (score = end of the job, or its
  deadline while it runs).
"""

from __future__ import annotations

SCHEMA = "v3"
ROOT = f"huntaze:{SCHEMA}"
DEFAULT_BREAKER = "onlyfans"


def limit_name(scope: str, value: str | None = None) -> str:
    """``global`` or ``creator:c1``: the part of a limit's keys that says which limit it is."""
    return scope if value is None else f"{scope}:{value}"


def limit_slots(name: str) -> str:
    return f"{ROOT}:limit:{name}:slots"


def limit_bucket(name: str) -> str:
    return f"{ROOT}:limit:{name}:bucket"


def limit_ttl_mark(name: str) -> str:
    return f"{ROOT}:limit:{name}:ttl"


LIMITER_EPOCH = f"{ROOT}:limit:epoch"
GATE_TICKETS = f"{ROOT}:gate:tickets"


def gate_job(identity: str) -> str:
    return f"{ROOT}:gate:job:{identity}"


def gate_order(creator: str) -> str:
    return f"{ROOT}:gate:order:{creator}"


def gate_forwarded(identity: str) -> str:
    return f"{ROOT}:gate:fwd:{identity}"


def breaker_prefix(name: str = DEFAULT_BREAKER) -> str:
    return f"{ROOT}:breaker:{name}"


def breaker_open(name: str = DEFAULT_BREAKER) -> str:
    """Exists only while the breaker is OPEN (PX TTL = time left open): the gate's only view of the breaker."""
    return f"{breaker_prefix(name)}:open"


def breaker_state(name: str = DEFAULT_BREAKER) -> str:
    return f"{breaker_prefix(name)}:state"


def breaker_probe(name: str = DEFAULT_BREAKER) -> str:
    return f"{breaker_prefix(name)}:probe"


IDEMPOTENCY_PREFIX = f"{ROOT}:scraper:idem"


def idempotency(identity: str) -> str:
    return f"{IDEMPOTENCY_PREFIX}:{identity}"


def platform_log(name: str = "global") -> str:
    return f"{ROOT}:platform:{name}:log"
