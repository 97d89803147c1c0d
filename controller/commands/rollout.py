"""`huntazectl rollout status|history|undo service NAME [--cluster C] [--run-dir DIR] [-o json]`: ECS deployments.

``status``: the service's task definition, desired count and deploymentConfiguration (from DescribeServices),
the state of the alarms its deployments watch (CloudWatch), and its current deployment: the task definitions
old → new, the rollout state and reason, healthy new / old tasks, and the circuit breaker's settings, threshold
and failures so far. ``history``: every deployment with its outcome (COMPLETED, FAILED, ROLLED_BACK) and reason.
``undo``: UpdateService back to the previous task definition (the one the current deployment replaced; else the
family's highest ACTIVE revision below the current one), which starts a deployment of its own.

Where the rollout state comes from, and every output says which:
- locally, the local plane's record (`localplane.deployments`: ``<run dir>/deployments/<cluster>--<service>.json``,
  the run dir from ``--run-dir`` or ``.huntaze/current``), because moto's DescribeServices keeps the single
  deployment it made at CreateService, unchanged and IN_PROGRESS, whatever happens afterwards;
- else (AWS, or no local record of this service), DescribeServices' ``deployments`` (PRIMARY and ACTIVE: the
  current deployment and the one it replaces; ECS keeps no longer history there, so ``history`` then shows only
  those).

``rollout ... function NAME``: a Lambda function's releases (versions behind its ``live`` alias, the weights of a
traffic shift, its record on the alias), in `controller.commands._rollout_function`.
Exit 0; 1 when the service or function does not exist; 2 on a usage error (what to type instead).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

from controller.errors import HuntazeCtlError

TARGETS = ("service", "function")


def register(sub: Any) -> None:
    from controller.commands._common import add_identity_arguments

    parser: argparse.ArgumentParser = sub.add_parser(
        "rollout", help="show or undo a service's deployment or a function's release (status, history, undo)")
    parser.add_argument("action", choices=["status", "history", "undo"])
    parser.add_argument("target", choices=TARGETS, metavar="service|function",
                        help="what is rolled out: an ECS service or a Lambda function")
    parser.add_argument("name", metavar="NAME",
                        help="the ECS service or Lambda function name (e.g. huntaze-onlyfans-scraper, "
                             "huntaze-rate-limiter)")
    parser.add_argument("--cluster", default=None, help="its ECS cluster (default: the one that has it)")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="local plane run dir holding deployments/ (default: .huntaze/current's)")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    add_identity_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from common.aws import client

    if args.target == "function":
        from controller.commands import _rollout_function

        return _rollout_function.run(args.action, args.name, args.output)
    ecs = client("ecs")
    service = _find_service(ecs, args.name, args.cluster)
    if service is None:
        where = f"cluster {args.cluster}" if args.cluster else "any cluster"
        print(f"error: no ACTIVE ECS service {args.name!r} in {where}; `huntazectl get service` lists them")
        return 1
    cluster = service["clusterArn"].rsplit("/", 1)[-1]
    records, source = _deployments(service, cluster, args.run_dir)
    if args.action == "undo":
        return _undo(ecs, service, cluster, records, source)
    if args.action == "history":
        return _history(service, records, source, args.output)
    return _status(service, records, source, args.output, _alarm_states(service))


def _alarm_states(service: dict[str, Any]) -> dict[str, str]:
    """The state of each alarm the service's deployments watch (CloudWatch), by name."""
    from common.aws import client

    alarms = (service.get("deploymentConfiguration") or {}).get("alarms") or {}
    names = list(alarms.get("alarmNames", [])) if alarms.get("enable") else []
    if not names:
        return {}
    found = client("cloudwatch").describe_alarms(AlarmNames=names[:100]).get("MetricAlarms", [])
    states = {a["AlarmName"]: a["StateValue"] for a in found}
    return {name: states.get(name, "MISSING (no such alarm)") for name in names}


def _find_service(ecs: Any, name: str, cluster: str | None) -> dict[str, Any] | None:
    clusters = [cluster] if cluster else [
        arn for page in ecs.get_paginator("list_clusters").paginate() for arn in page.get("clusterArns", [])
    ]
    for arn in clusters:
        try:
            found = ecs.describe_services(cluster=arn, services=[name]).get("services", [])
        except ecs.exceptions.ClusterNotFoundException:
            continue
        active = [s for s in found if s.get("status") == "ACTIVE"]
        if active:
            return dict(active[0])
    return None


def _local_file(run_dir: Path | None, cluster: str, name: str) -> Path | None:
    from controller.commands.up import RUNS_DIR
    from localplane import deployments
    from localplane.stack import current_run_dir

    base = run_dir or current_run_dir(RUNS_DIR)
    if base is None:
        return None
    path = deployments.path_for(base, cluster, name)
    return path if path.exists() else None


def _deployments(service: dict[str, Any], cluster: str, run_dir: Path | None) -> tuple[list[dict[str, Any]], str]:
    """The deployments, oldest first, in one shape, and a sentence saying where they come from."""
    from dataclasses import asdict

    from localplane import deployments

    path = _local_file(run_dir, cluster, service["serviceName"])
    if path is not None:
        source = (f"local plane record {path} (moto's DescribeServices deployments never change after "
                  "CreateService, so the local plane records the deployments it carries out)")
        return [asdict(d) for d in deployments.load(path)], source
    records = []
    for d in sorted(service.get("deployments", []), key=lambda d: str(d.get("createdAt"))):
        breaker = (service.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
        records.append({
            "id": d.get("id"), "task_definition": d.get("taskDefinition"), "previous_task_definition": None,
            "desired_count": d.get("desiredCount"), "circuit_breaker": breaker, "failure_threshold": None,
            "rollout_state": d.get("rolloutState") or d.get("status"),
            "rollout_state_reason": d.get("rolloutStateReason", ""), "running_count": d.get("runningCount"),
            "old_running_count": None, "failed_tasks": d.get("failedTasks"), "consecutive_failures": None,
            "created_at": str(d.get("createdAt")), "updated_at": str(d.get("updatedAt")), "finished_at": None,
        })
    for older, newer in itertools.pairwise(records):
        newer["previous_task_definition"] = older["task_definition"]
    return records, "ECS DescribeServices deployments (current ones only: ECS keeps no longer history there)"


def _short(arn: str | None) -> str:
    return arn.rsplit("/", 1)[-1] if arn else "-"


def _configuration(service: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    config = service.get("deploymentConfiguration")
    if config is None:
        return ("not returned by DescribeServices (moto drops it at CreateService until an UpdateService sets "
                "it); ECS defaults apply to what the API shows: 100/200, breaker off"), None
    breaker = config.get("deploymentCircuitBreaker") or {}
    alarms = config.get("alarms") or {}
    watched = ", ".join(alarms.get("alarmNames", []))
    parts = [
        f"minimumHealthyPercent {config.get('minimumHealthyPercent', 100)}",
        f"maximumPercent {config.get('maximumPercent', 200)}",
        "circuit breaker " + ("off" if not breaker.get("enable") else
                              "on, rollback " + ("on" if breaker.get("rollback") else "off")),
        "alarms " + ("off" if not alarms.get("enable") else
                     f"{watched} (rollback {'on' if alarms.get('rollback') else 'off'})"),
    ]
    return ", ".join(parts), dict(config)


def _status(service: dict[str, Any], records: list[dict[str, Any]], source: str, output: str,
            alarms: dict[str, str]) -> int:
    text, config = _configuration(service)
    current = records[-1] if records else None
    if output == "json":
        print(json.dumps({
            "service": service["serviceName"], "cluster": service["clusterArn"].rsplit("/", 1)[-1],
            "taskDefinition": service.get("taskDefinition"), "desiredCount": service.get("desiredCount"),
            "deploymentConfiguration": config, "alarms": alarms, "deployment": current, "source": source,
        }, indent=2, default=str))
        return 0
    print(f"service {service['serviceName']} (cluster {service['clusterArn'].rsplit('/', 1)[-1]})")
    print(f"  task definition   {_short(service.get('taskDefinition'))}, desired count "
          f"{service.get('desiredCount')}  [DescribeServices]")
    print(f"  deployment config {text}")
    if alarms:
        print("  alarms watched    " + ", ".join(f"{name} {state}" for name, state in alarms.items())
              + "  [CloudWatch]")
    if current is None:
        print("  no deployment recorded yet")
    else:
        print(f"  deployment        {current['id']}: {current['rollout_state']}  "
              f"{_short(current['previous_task_definition'])} -> {_short(current['task_definition'])}")
        if current["rollout_state_reason"]:
            print(f"  reason            {current['rollout_state_reason']}")
        old = current["old_running_count"]
        print(f"  tasks             {current['running_count']} new healthy of {current['desired_count']} desired"
              + ("" if old is None else f", {old} old still running"))
        breaker = current["circuit_breaker"] or {}
        if breaker.get("enable"):
            failures = current["consecutive_failures"]
            so_far = "" if failures is None else f", {failures} failure(s) in a row so far"
            threshold = current["failure_threshold"]
            trips = "" if threshold is None else f", trips at {threshold}"
            print(f"  circuit breaker   on, rollback {'on' if breaker.get('rollback') else 'off'}{trips}{so_far}"
                  f" ({current['failed_tasks']} failed task(s) in all)")
        else:
            print(f"  circuit breaker   off ({current['failed_tasks']} failed task(s))")
        print(f"  started           {current['created_at']}, updated {current['updated_at']}")
    print(f"  rollout state from {source}")
    return 0


def _history(service: dict[str, Any], records: list[dict[str, Any]], source: str, output: str) -> int:
    if output == "json":
        print(json.dumps({"service": service["serviceName"], "deployments": records, "source": source},
                         indent=2, default=str))
        return 0
    from rich.table import Table

    from controller.commands._common import console

    table = Table(title=f"deployments of {service['serviceName']} ({source})")
    for column in ("id", "started", "finished", "task definition", "replaced", "outcome", "failed tasks",
                   "reason"):
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(r["id"], r["created_at"], r["finished_at"] or "", _short(r["task_definition"]),
                      _short(r["previous_task_definition"]), r["rollout_state"], str(r["failed_tasks"]),
                      r["rollout_state_reason"])
    out = console()
    out.print(table)
    if not records:
        out.print("no deployment recorded")
    return 0


def _previous_revision(ecs: Any, current: str) -> str | None:
    """The family's highest ACTIVE revision below ``current`` (moto ignores ``sort``: sorted here)."""
    described = ecs.describe_task_definition(taskDefinition=current)["taskDefinition"]
    family, revision = described["family"], int(described["revision"])
    arns = [a for page in ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status="ACTIVE")
            for a in page.get("taskDefinitionArns", [])]
    below = [(int(a.rsplit(":", 1)[-1]), a) for a in arns
             if a.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family and int(a.rsplit(":", 1)[-1]) < revision]
    return max(below)[1] if below else None


def _undo(ecs: Any, service: dict[str, Any], cluster: str, records: list[dict[str, Any]], source: str) -> int:
    current = service["taskDefinition"]
    latest = records[-1] if records else None
    previous = None
    how = ""
    if latest is not None and latest["task_definition"] == current and latest["previous_task_definition"]:
        previous, how = latest["previous_task_definition"], f"the one deployment {latest['id']} replaced ({source})"
    if previous is None or previous == current:
        previous, how = _previous_revision(ecs, current), "the family's previous ACTIVE revision"
    if previous is None:
        raise HuntazeCtlError(f"{service['serviceName']} runs {_short(current)} and there is no earlier ACTIVE "
                              "revision of its family to go back to; register one (apply an older TaskDefinition "
                              "spec) instead")
    from controller import rollback_mark

    ecs.update_service(cluster=cluster, service=service["serviceName"], taskDefinition=previous)
    rollback_mark.mark_service(ecs, service["serviceArn"], rollback_mark.RollbackMark(
        current, rollback_mark.ON_CALL, f"rollout undo: {_short(current)} -> {_short(previous)}"))
    print(f"{service['serviceName']}: task definition {_short(current)} -> {_short(previous)} ({how}); ECS (the "
          "local plane, locally) now rolls it out: follow it with "
          f"`huntazectl rollout status service {service['serviceName']}`")
    print(f"note: the controller holds the service on {_short(previous)} (held: rolled back) until the "
          "TaskDefinition spec changes; fix it and apply to release a new revision")
    return 0
