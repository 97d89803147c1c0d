"""The diagnosis line of `huntazectl status`: ONE table of rules, each naming a cause, its evidence and the next
command, evaluated over a `controller.oncall.collect.Snapshot` (called by the status command and its tests).

Rules are ordered most-specific first; every rule that holds is reported, the first is the headline. A rule is
a live cause (``kind`` "cause": something is wrong now) or a note (``kind`` "note": something happened that is
already put right, such as a hand edit the controller corrected). A note never outranks a cause: causes come
first in table order, then notes; with no cause the headline is "healthy" and the notes follow it (exit 0).
Thresholds are module constants so a test (or a reader) sees exactly what trips a rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from controller.oncall.collect import Snapshot

CRASH_LOOP_STOPS = 2  # task exits (non-zero) among the recent stops
BACKLOG_JOBS = 1  # jobs waiting in a queue before "backing up" is considered
MANIFESTS = "-f manifests -f ecs-specs"
# A corrected drift is reported (as a note) while its journal record is this recent; the journal is read over the
# same window (collect.JOURNAL_WINDOW_S), so a correction older than this is not shown at all.
CORRECTED_NOTE_S = 900
CAUSE, NOTE = "cause", "note"
FAILED, ROLLED_BACK = "FAILED", "ROLLED_BACK"  # ECS rolloutState values (localplane.deployments records them too)


@dataclass(frozen=True)
class Finding:
    rule: str
    cause: str
    evidence: str
    next: str  # the command to run next
    kind: str = CAUSE  # CAUSE: wrong now; NOTE: already put right, shown below every cause

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


def _exit_reason(stop: dict[str, Any]) -> str:
    return str(stop["reason"].split(": ", 1)[-1] or stop["reason"])


def scraper_crash_loop(s: Snapshot) -> Finding | None:
    exits = _exits(s)
    if len(exits) < CRASH_LOOP_STOPS or _stopped_deployment(s):
        return None  # a deployment the breaker stopped starts no new task: deployment_failed names it
    reason = _exit_reason(exits[-1])
    return Finding("scraper_crash_loop", f"the scraper is crash-looping: {reason}",
                   f"{len(exits)} task exits among the last {len(s.scraper.get('recent_stops', []))} stops; running "
                   f"{s.scraper.get('running')} of {s.scraper.get('desired')} (task definition "
                   f"{exits[-1].get('task_definition')})",
                   f"huntazectl diff {MANIFESTS} --env {s.env}  # then fix the task definition's environment and "
                   f"huntazectl apply; or go back at once: huntazectl rollout undo service {s.scraper.get('service')}")


def _deployment_exit(s: Snapshot, task_definition: str | None) -> str:
    """The last non-zero exit of a deployment's tasks, as ECS recorded the stop; else say there is none."""
    exits = [t for t in s.scraper.get("recent_stops", []) if "exit code" in t.get("reason", "")
             and "exit code 0)" not in t.get("reason", "") and t.get("task_definition") == task_definition]
    return _exit_reason(exits[-1]) if exits else "no task exit among the recent stops (failed health checks?)"


def _failed(d: dict[str, Any]) -> bool:
    """A deployment the breaker (or a watched alarm) stopped; one superseded by a newer deploy did not fail."""
    return d.get("rollout_state") == ROLLED_BACK or (
        d.get("rollout_state") == FAILED and "superseded" not in (d.get("rollout_state_reason") or ""))


def _stopped_deployment(s: Snapshot) -> dict[str, Any] | None:
    """The service's latest deployment, when it failed and the service still points at its revision."""
    deps: list[dict[str, Any]] = s.scraper.get("deployments") or []
    if not deps or not _failed(deps[-1]) or deps[-1].get("task_definition") != s.scraper.get("task_definition"):
        return None
    return deps[-1]


def deployment_failed(s: Snapshot) -> Finding | None:
    """The service's latest deployment FAILED and the service still points at its revision (breaker without
    rollback): no new task starts, the old tasks run on, and the next deploy or a rollback must put it right."""
    d, name = _stopped_deployment(s), s.scraper.get("service")
    if d is None:
        return None
    return Finding("deployment_failed", f"the deployment of {d['task_definition']} to {name} failed: "
                   f"{_deployment_exit(s, d['task_definition'])}",
                   f"deployment {d.get('id')} {d.get('rollout_state')}: {d.get('rollout_state_reason')}; "
                   f"{d.get('failed_tasks')} new task(s) failed; the old tasks run on "
                   f"({s.scraper.get('running')} of {s.scraper.get('desired')} running)",
                   f"huntazectl rollout status service {name}  # then: huntazectl rollout undo service {name}")


def deployment_rolled_back(s: Snapshot) -> Finding | None:
    """A deployment the circuit breaker rolled back (the service left its revision): a note for CORRECTED_NOTE_S,
    as the service runs the last good revision again; the change it was meant to ship did not ship."""
    deps = s.scraper.get("deployments") or []
    back = [d for d in deps if _failed(d) and d.get("task_definition") != s.scraper.get("task_definition")
            and _age_s(s, {"at": d.get("finished_at")}) <= CORRECTED_NOTE_S]
    if not back:
        return None
    d, name = back[-1], s.scraper.get("service")
    return Finding("deployment_rolled_back", f"the deployment of {d['task_definition']} to {name} was rolled back "
                   f"to {d.get('previous_task_definition') or s.scraper.get('task_definition')}: "
                   f"{_deployment_exit(s, d['task_definition'])}",
                   f"deployment {d.get('id')} {d.get('rollout_state')} at {d.get('finished_at')}: "
                   f"{d.get('rollout_state_reason')}; {d.get('failed_tasks')} new task(s) failed",
                   f"huntazectl rollout status service {name}  # fix the revision before deploying it again",
                   kind=NOTE)


def breaker_open(s: Snapshot) -> Finding | None:
    breaker = s.gate.get("breaker", {})
    if breaker.get("state") != "open":  # half-open: the gate forwards again while one probe job runs
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


def _fields(d: dict[str, Any]) -> str:
    return ", ".join(f for f in d.get("fields", []) if f) or "a field"


def release_held(s: Snapshot) -> Finding | None:
    """A release rolled back (ECS's breaker or alarms, a gate shift's alarm, or `rollout undo`): the controller
    holds the old one and will not release the spec's again until the spec changes."""
    held = s.controller.get("held") or []
    if not held:
        return None
    h = held[-1]
    kind, _, name = str(h["resource"]).partition("/")
    target = "service" if kind == "Service" else "function"
    return Finding("release_held", f"{h['resource']} was rolled back; the controller holds it on the old release "
                   "(not drift) until its spec changes",
                   f"controller journal ({s.controller.get('source')}) at {h.get('at')}: {h.get('message')}",
                   f"huntazectl rollout status {target} {name}  # then fix the spec and apply {MANIFESTS} "
                   f"--env {s.env}")


def spec_drifted(s: Snapshot) -> Finding | None:
    """A hand edit still live: the controller observed it and did not write it back (observe mode, paused)."""
    live = [d for d in s.controller.get("drifted") or [] if not d.get("corrected")]
    if not live:
        return None
    d = live[-1]
    return Finding("spec_drifted", f"{d['resource']} was changed by hand ({_fields(d)})",
                   f"controller journal ({s.controller.get('source')}): drift at {d.get('at')}, not corrected "
                   "(observe mode or paused)",
                   f"huntazectl drift {MANIFESTS} --env {s.env}")


def drift_corrected(s: Snapshot) -> Finding | None:
    """A hand edit the controller already wrote back: a note for CORRECTED_NOTE_S, never the headline over a
    live cause (the spec holds again; what it may have caused meanwhile shows up as its own cause)."""
    recent = [d for d in s.controller.get("drifted") or [] if d.get("corrected") and _age_s(s, d) <= CORRECTED_NOTE_S]
    if not recent:
        return None
    d = recent[-1]
    more = f" (and {len(recent) - 1} other resource(s))" if len(recent) > 1 else ""
    return Finding("drift_corrected", f"{d['resource']} was changed by hand ({_fields(d)}) and the controller "
                   f"corrected it{more}",
                   f"controller journal ({s.controller.get('source')}): corrected at {d.get('at')}, "
                   f"{_age_s(s, d):.0f}s ago",
                   f"huntazectl history --resource {d['resource']} --drift  # who edits it by hand?",
                   kind=NOTE)


def _age_s(s: Snapshot, d: dict[str, Any]) -> float:
    try:
        return max(0.0, (datetime.fromisoformat(s.at) - datetime.fromisoformat(str(d.get("at")))).total_seconds())
    except (TypeError, ValueError):
        return 0.0  # no time recorded: it is in the journal window, so recent


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


# THE table: order is priority (root causes before their symptoms); notes (kind NOTE) always after every cause.
RULES: tuple[Rule, ...] = (
    redis_unreachable,
    scraper_crash_loop,  # before a failed deployment: while its new tasks keep exiting, the loop is the news
    deployment_failed,
    breaker_open,
    field_flipping,
    release_held,  # before drift: a held release is the answer to "why does the service run the old revision"
    spec_drifted,
    dlq_invalid_jobs,
    dlq_platform_failures,
    backlog_limit,  # before workers: jobs deferred at the gate while the FIFO stays short are the limit's doing
    backlog_workers,
    alarm_without_rule,
    drift_corrected,  # a note: below every live cause, whatever its place here
    deployment_rolled_back,  # a note too: the service runs its last good revision again
)


def diagnose(snapshot: Snapshot) -> list[Finding]:
    found = [f for f in (rule(snapshot) for rule in RULES) if f is not None]
    causes = [f for f in found if f.kind == CAUSE]
    notes = [f for f in found if f.kind == NOTE]
    if causes:
        return causes + notes
    healthy = Finding("healthy", "healthy: no rule matched" + (f" ({len(notes)} note(s) below)" if notes else ""),
                      "no alarm in ALARM, no backlog, no dead letters", "huntazectl status --watch")
    return [healthy, *notes]
