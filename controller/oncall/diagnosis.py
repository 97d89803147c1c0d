"""The diagnosis line of `huntazectl status`: ONE table of rules, each naming a cause, its evidence and the next
command, evaluated over a `controller.oncall.collect.Snapshot` (called by the status command and its tests).

Rules are ordered most-specific first; every rule that holds is reported, the first is the headline. Thresholds
are module constants so a test (or a reader) sees exactly what trips a rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from controller.oncall.collect import Snapshot

CRASH_LOOP_STOPS = 2  # task exits (non-zero) among the recent stops
BACKLOG_JOBS = 1  # jobs waiting in a queue before "backing up" is considered
MANIFESTS = "-f manifests -f ecs-specs"


@dataclass(frozen=True)
class Finding:
    rule: str
    cause: str
    evidence: str
    next: str  # the command to run next

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


Rule = Callable[[Snapshot], Finding | None]


def redis_unreachable(s: Snapshot) -> Finding | None:
    if s.gate.get("redis_reachable", True):
        return None
    return Finding("redis_unreachable", "Redis is unreachable: the gate cannot take limiter decisions and defers "
                   "every job (nothing is admitted)",
                   f"redis: {s.gate.get('redis_error', 'no answer')}; ingress waiting "
                   f"{s.queue('ingress').get('depth', 0)} + delayed {s.queue('ingress').get('delayed', 0)}",
                   "huntazectl describe Function/huntaze-rate-limiter  # check REDIS_URL, then: redis-cli -u "
                   "\"$REDIS_URL\" ping")


def _exits(s: Snapshot) -> list[dict[str, Any]]:
    """Non-zero task exits of the service's current task definition (a fixed revision ends the loop)."""
    current = s.scraper.get("task_definition")
    return [t for t in s.scraper.get("recent_stops", []) if "exit code" in t.get("reason", "")
            and "exit code 0)" not in t.get("reason", "") and t.get("task_definition") == current]


def scraper_crash_loop(s: Snapshot) -> Finding | None:
    exits = _exits(s)
    if len(exits) < CRASH_LOOP_STOPS:
        return None
    reason = exits[-1]["reason"].split(": ", 1)[-1] or exits[-1]["reason"]
    return Finding("scraper_crash_loop", f"the scraper is crash-looping: {reason}",
                   f"{len(exits)} task exits among the last {len(s.scraper.get('recent_stops', []))} stops; running "
                   f"{s.scraper.get('running')} of {s.scraper.get('desired')} (task definition "
                   f"{exits[-1].get('task_definition')})",
                   f"huntazectl diff {MANIFESTS} --env {s.env}  # then fix the task definition's environment and "
                   "huntazectl apply")


def breaker_open(s: Snapshot) -> Finding | None:
    breaker = s.gate.get("breaker", {})
    if breaker.get("state") not in ("open", "half_open"):
        return None
    closes = breaker.get("closes_in_s")
    return Finding("breaker_open", "the circuit breaker is open after the platform answered 429/5xx: every job "
                   "waits" + (f"; it closes in {closes:.0f}s" if closes else ""),
                   f"breaker {breaker.get('state')} ({breaker.get('reason') or 'no reason recorded'}), opened "
                   f"{breaker.get('opens', 0)} time(s); 429s in 5 min: {s.scraper.get('count_429', 0):g}, 5xx: "
                   f"{s.scraper.get('count_5xx', 0):g}",
                   "huntazectl status --watch  # it closes by itself; if it keeps reopening, lower "
                   "HUNTAZE_RATE_LIMITS in manifests/gate.yaml and huntazectl apply")


def dlq_invalid_jobs(s: Snapshot) -> Finding | None:
    dead = s.dead_letters
    invalid = dead.get("by_class", {}).get("validation", 0)
    if not invalid or invalid * 2 < dead.get("sampled", 0):
        return None
    top = "; ".join(dead.get("top_validation_errors", [])) or "see the error attribute"
    return Finding("dlq_invalid_jobs", f"the DLQ is filling with invalid jobs: {top}",
                   f"{dead.get('total')} dead letters; {invalid} of {dead.get('sampled')} sampled break the "
                   "contract (a producer sends bad jobs)",
                   "huntazectl dlq list --queue ingress  # fix the producer; huntazectl schema job shows the contract")


def dlq_platform_failures(s: Snapshot) -> Finding | None:
    classes = s.dead_letters.get("platform_classes", {})
    if not classes:
        return None
    top, count = next(iter(classes.items()))
    example = "; ".join(s.dead_letters.get("platform_examples", [])[:1])
    return Finding("dlq_platform_failures", f"the DLQ is filling with jobs that failed at the platform "
                   f"(error class {top})",
                   f"{count} of {s.dead_letters.get('sampled')} sampled dead letters are {top}: {example}",
                   f"huntazectl dlq list --queue workflows  # once the platform is fixed: huntazectl dlq redrive "
                   f"--reason {top}")


def field_flipping(s: Snapshot) -> Finding | None:
    marks = s.controller.get("non_converging") or []
    if not marks:
        return None
    m = marks[-1]
    return Finding("field_flipping", f"someone keeps flipping {m.get('resource')} {m.get('field')}: the "
                   "controller stopped writing it (non-converging)",
                   f"flipped back {m.get('flips')} times (desired {m.get('desired')!r}, live {m.get('live')!r}) at "
                   f"{', '.join(m.get('flip_times', [])[-3:])}",
                   f"huntazectl describe {m.get('resource')}  # find the other writer, then: huntazectl controller "
                   f"resume {m.get('resource')}")


def spec_drifted(s: Snapshot) -> Finding | None:
    drifted = s.controller.get("drifted") or []
    if not drifted:
        return None
    d = drifted[-1]
    fields = ", ".join(f for f in d.get("fields", []) if f) or "a field"
    state = "corrected by the controller" if d.get("corrected") else "not corrected (observe mode or paused)"
    return Finding("spec_drifted", f"{d['resource']} was changed by hand ({fields})",
                   f"controller journal ({s.controller.get('source')}): drift at {d.get('at')}, {state}",
                   f"huntazectl drift {MANIFESTS} --env {s.env}")


def _backlog(s: Snapshot) -> int:
    ingress, fifo = s.queue("ingress"), s.queue("workflows")
    return int(ingress.get("depth", 0) + ingress.get("delayed", 0) + fifo.get("depth", 0))


def backlog_limit(s: Snapshot) -> Finding | None:
    if _backlog(s) < BACKLOG_JOBS:
        return None
    full = [lim for lim in s.gate.get("limits", [])
            if lim["admitted_in_window"] >= lim["limit"] or lim.get("reserved_ahead", 0) > 0]
    if not full or s.queue("workflows").get("depth", 0) > s.queue("ingress").get("delayed", 0):
        return None
    # the fullest limit first (a scoped limit names its busiest value): that is the one holding jobs back
    lim = max(full, key=lambda x: x["admitted_in_window"] / x["limit"])
    scope = f"{lim['scope']} {lim['busiest']}" if lim.get("busiest") else lim["scope"]
    return Finding("backlog_rate_limit", "jobs are backing up because the rate limit is the bottleneck (working as "
                   "designed: the platform allows no more)",
                   f"{lim['admitted_in_window']}/{lim['limit']} admitted in the last {lim['window_s']:g}s "
                   f"({scope}), {lim.get('reserved_ahead', 0)} slots reserved ahead; ingress "
                   f"{s.queue('ingress').get('depth', 0)} + {s.queue('ingress').get('delayed', 0)} deferred; FIFO "
                   f"{s.queue('workflows').get('depth', 0)}",
                   "huntazectl status --watch  # the backlog drains at the limit; raise HUNTAZE_RATE_LIMITS only if "
                   "the platform allows more")


def backlog_workers(s: Snapshot) -> Finding | None:
    fifo = s.queue("workflows")
    if fifo.get("depth", 0) < BACKLOG_JOBS:
        return None
    running, desired = s.scraper.get("running", 0), s.scraper.get("desired", 0)
    if running >= desired and running > 0:
        return None
    return Finding("backlog_workers", "jobs are backing up in the FIFO queue because scraper workers are missing",
                   f"FIFO holds {fifo.get('depth')} (oldest {fifo.get('oldest_age_s') or 0:.0f}s), "
                   f"{fifo.get('in_flight')} in flight; scraper tasks running {running} of desired {desired}",
                   "huntazectl describe Service/huntaze-onlyfans-scraper  # desired count, task stops; "
                   "huntazectl get service")


def alarm_without_rule(s: Snapshot) -> Finding | None:
    firing = s.alarms.get("in_alarm", [])
    if not firing:
        return None
    a = firing[0]
    return Finding("alarm", f"alarm {a['name']} is in ALARM: {a.get('description')}",
                   f"value {a.get('value')} vs threshold {a.get('threshold')} since {a.get('since')}",
                   f"open the runbook: {a.get('runbook') or 'docs/runbook.md'}")


# THE table: order is priority (root causes before their symptoms).
RULES: tuple[Rule, ...] = (
    redis_unreachable,
    scraper_crash_loop,
    breaker_open,
    field_flipping,
    spec_drifted,
    dlq_invalid_jobs,
    dlq_platform_failures,
    backlog_limit,  # before workers: jobs deferred at the gate while the FIFO stays short are the limit's doing
    backlog_workers,
    alarm_without_rule,
)


def diagnose(snapshot: Snapshot) -> list[Finding]:
    found = [f for f in (rule(snapshot) for rule in RULES) if f is not None]
    return found or [Finding("healthy", "healthy: no rule matched", "no alarm in ALARM, no backlog, no dead letters",
                             "huntazectl status --watch")]
