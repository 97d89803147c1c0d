"""The rollouts an `apply` started, and following each to its end: what `huntazectl apply [--wait]` prints.

Called by `controller.commands.apply` after the reconcile pass. A rollout is started by two kinds only, and each
has its own engine and its own record, so each has a follower here:

- ``Service`` (an ECS service whose ``taskDefinition`` changed): ECS's rolling deployment, old -> new task
  definition. Its state comes from the local plane's record of the deployments it carries out
  (`localplane.deployments`, ``<run dir>/deployments/``: moto's DescribeServices deployments never change) when
  there is one, else from DescribeServices: the deployment of the new task definition and its ``rolloutState``;
  a service that runs another task definition again was rolled back (ECS's circuit breaker or alarms).
- ``Function`` (a Lambda whose ``live`` alias got a new version): the traffic shift recorded on the alias
  (`controller.traffic_shift`: old and new version, strategy, SHIFTING / COMPLETED / ROLLED_BACK), completed by
  CodeDeploy on AWS and by the local plane's traffic shifter locally.

`follow` polls every rollout until each is COMPLETED, FAILED or ROLLED_BACK, printing a line whenever one moves,
and returns their outcomes; a deadline leaves the rest IN_PROGRESS (the command says how to keep watching).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller import traffic_shift

IN_PROGRESS, COMPLETED, FAILED, ROLLED_BACK = "IN_PROGRESS", "COMPLETED", "FAILED", "ROLLED_BACK"
FINISHED = frozenset({COMPLETED, FAILED, ROLLED_BACK})


@dataclass
class Rollout:
    """One rollout an apply started: ``old`` -> ``new`` of ``resource`` (Service/NAME or Function/NAME)."""

    resource: str
    name: str
    old: str | None
    new: str
    how: str  # the engine and its settings, for the first line
    cluster: str = ""
    state: str = IN_PROGRESS
    detail: str = ""  # the last progress line's detail (weights, tasks, reason)
    history: list[str] = field(default_factory=list)

    def started_line(self) -> str:
        return f"rollout {self.resource}: {_short(self.old)} -> {_short(self.new)} ({self.how})"

    def follow_hint(self) -> str:
        target = "service" if self.resource.startswith("Service/") else "function"
        return f"huntazectl rollout status {target} {self.name}"


def _short(value: str | None) -> str:
    return value.rsplit("/", 1)[-1] if value else "-"


def started(results: Iterable[Any], client: Callable[[str], Any]) -> list[Rollout]:
    """The rollouts the written results started (a Service's new task definition, a Function's new version)."""
    found: list[Rollout] = []
    for result in results:
        if result.dry_run or result.live_after is None or str(result.action) not in ("created", "updated"):
            continue
        before, after = result.live_before or {}, result.live_after
        if result.key.kind == "Service" and before and before.get("taskDefinition") != after.get("taskDefinition"):
            found.append(_service_rollout(after))
        elif result.key.kind == "Function" and before and set(result.changed) - _NO_RELEASE:
            rollout = _function_rollout(client("lambda"), str(after["functionName"]))
            if rollout is not None:
                found.append(rollout)
    return found


_NO_RELEASE = frozenset({"tags", "reservedConcurrency"})  # what the Function kind changes without a new version


def _service_rollout(after: dict[str, Any]) -> Rollout:
    config = after.get("deploymentConfiguration") or {}
    breaker = config.get("deploymentCircuitBreaker") or {}
    alarms = config.get("alarms") or {}
    parts = [f"ECS rolling update {config.get('minimumHealthyPercent', 100)}/{config.get('maximumPercent', 200)}%",
             "circuit breaker " + ("off" if not breaker.get("enable") else
                                   f"on, rollback {'on' if breaker.get('rollback') else 'off'}")]
    if alarms.get("enable"):
        parts.append(f"alarms {', '.join(alarms.get('alarmNames', []))}")
    name = str(after["serviceName"])
    return Rollout(f"Service/{name}", name, None, str(after["taskDefinition"]), ", ".join(parts),
                   cluster=str(after["cluster"]))


def _function_rollout(lam: Any, name: str) -> Rollout | None:
    try:
        alias = lam.get_alias(FunctionName=name, Name=traffic_shift.ALIAS)
    except lam.exceptions.ResourceNotFoundException:
        return None
    record = _resolved(alias)
    if record is None or record.old is None:
        return None  # the first version: nothing shifts
    weights = ", ".join(f"v{v} {w:.0%}" for v, w in sorted(traffic_shift.weights(alias).items()))
    alarms = f"; alarms {', '.join(record.alarms)}" if record.alarms else ""
    by = f"; CodeDeploy deployment {record.deployment}" if record.deployment else ""
    return Rollout(f"Function/{name}", name, f"version {record.old}", f"version {record.new}",
                   f"{record.strategy}, now {weights}{alarms}{by}")


def _resolved(alias: dict[str, Any]) -> traffic_shift.ShiftRecord | None:
    """The alias' shift record, its state read from CodeDeploy when a deployment shifts it."""
    from common.aws import client

    record = traffic_shift.decode(alias.get("Description"))
    return traffic_shift.resolve(record, client("codedeploy")) if record and record.deployment else record


def set_old(rollouts: list[Rollout], results: Iterable[Any]) -> None:
    """The old side of each service rollout: the task definition before the write."""
    before = {str(r.key): (r.live_before or {}).get("taskDefinition") for r in results}
    for rollout in rollouts:
        if rollout.old is None:
            rollout.old = before.get(rollout.resource)


# --- following -------------------------------------------------------------------------------------------------


def poll_service(rollout: Rollout, ecs: Any, run_dir: Path | None) -> tuple[str, str]:
    """(state, detail) of a service rollout: from the local plane's record if any, else DescribeServices."""
    found = ecs.describe_services(cluster=rollout.cluster, services=[rollout.name])["services"]
    service = found[0] if found else {}
    record = _local_record(run_dir, rollout)
    if record is not None:
        detail = (f"{record.running_count} new healthy of {record.desired_count}, {record.old_running_count} old "
                  f"running, {record.consecutive_failures}/{record.failure_threshold} failures in a row")
        state = record.rollout_state
        if state in (ROLLED_BACK, FAILED):
            detail = record.rollout_state_reason
        return state, detail
    return _aws_service_state(rollout, service)


def _local_record(run_dir: Path | None, rollout: Rollout) -> Any:
    from localplane import deployments

    if run_dir is None:
        return None
    records = [d for d in deployments.load(deployments.path_for(run_dir, rollout.cluster, rollout.name))
               if d.task_definition == rollout.new]
    return records[-1] if records else None


def _aws_service_state(rollout: Rollout, service: dict[str, Any]) -> tuple[str, str]:
    deployments = service.get("deployments") or []
    mine = [d for d in deployments if d.get("taskDefinition") == rollout.new]
    if service.get("taskDefinition") != rollout.new:
        reason = next((str(d.get("rolloutStateReason") or "") for d in mine), "")
        return ROLLED_BACK, reason or f"the service runs {_short(service.get('taskDefinition'))} again"
    if not mine:
        return IN_PROGRESS, "no deployment of it listed yet"
    d = mine[0]
    state = str(d.get("rolloutState") or IN_PROGRESS)
    detail = (f"{d.get('runningCount', 0)} running of {d.get('desiredCount', 0)}, {d.get('failedTasks', 0)} failed"
              + (f": {d['rolloutStateReason']}" if d.get("rolloutStateReason") else ""))
    return state, detail


def poll_function(rollout: Rollout, lam: Any) -> tuple[str, str]:
    """(state, detail) of a gate release, from the shift record and weights on the ``live`` alias."""
    alias = lam.get_alias(FunctionName=rollout.name, Name=traffic_shift.ALIAS)
    record = _resolved(alias)
    weights = ", ".join(f"v{v} {w:.0%}" for v, w in sorted(traffic_shift.weights(alias).items()))
    if record is None or f"version {record.new}" != rollout.new:
        return FAILED, f"superseded or changed by hand: the alias now serves {weights}"
    state = {traffic_shift.SHIFTING: IN_PROGRESS, traffic_shift.COMPLETED: COMPLETED,
             traffic_shift.ROLLED_BACK: ROLLED_BACK}.get(record.state, IN_PROGRESS)
    return state, weights + (f": {record.reason}" if record.reason and state != IN_PROGRESS else "")


def follow(
    rollouts: list[Rollout],
    poll: Callable[[Rollout], tuple[str, str]],
    say: Callable[[str], None],
    *,
    timeout_s: float,
    interval_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll until every rollout is finished or ``timeout_s`` passed; a line each time one changes."""
    deadline = time.monotonic() + timeout_s
    while True:
        for rollout in rollouts:
            if rollout.state in FINISHED:
                continue
            try:
                state, detail = poll(rollout)
            except Exception as exc:  # one failed read is not the rollout's failure: poll again
                state, detail = rollout.state, f"could not read its state ({type(exc).__name__}: {exc})"
            if (state, detail) != (rollout.state, rollout.detail):
                rollout.state, rollout.detail = state, detail
                line = f"  {rollout.resource}: {state}" + (f" ({detail})" if detail else "")
                rollout.history.append(line)
                say(line)
        if all(r.state in FINISHED for r in rollouts) or time.monotonic() >= deadline:
            return
        sleep(interval_s)
