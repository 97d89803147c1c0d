"""`huntazectl rollout status|history|undo function NAME [-o json]`: a Lambda function's releases (the gate).

A release is a published version behind the ``live`` alias (`controller.kinds.function`); a shift in progress
is the alias' RoutingConfig weight of the new version, and its record (old and new version, strategy, start,
alarms, state) is in the alias' Description (`controller.traffic_shift`). Everything here is read from the
Lambda API (and CloudWatch for the alarms), so it says the same locally and on AWS. When the record names a
CodeDeploy deployment (the Function spec's ``deployment.deploymentGroupRef``), its state and reason are
CodeDeploy's (GetDeployment: status, errorInformation, rollbackInfo), and ``undo`` stops it first.

``status``: the versions the alias serves with their weights, the shift (strategy, started, the next step of its
schedule, its state and reason) and the alarms a shift watches (`controller.watched_alarms`: the function's own
alarms, on its metrics, and the spec's ``deployment.alarms``) with their states. ``history``: the published versions,
newest first, with their code hash and date, marking those the alias serves; Lambda keeps the outcome of the
latest release only (the alias record), so older outcomes are not shown. ``undo``: the alias back to the previous
version: during a shift, all traffic to the old version (the shift is rolled back); else to the version the
last release replaced (or the highest version below the current one).
Exit 0; 1 when the function does not exist; 2 when there is nothing to go back to.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from controller import traffic_shift
from controller.errors import HuntazeCtlError


def run(action: str, name: str, output: str) -> int:
    from common.aws import client

    lam = client("lambda")
    try:
        function = lam.get_function(FunctionName=name)["Configuration"]
    except lam.exceptions.ResourceNotFoundException:
        print(f"error: no Lambda function {name!r}; `huntazectl get function` lists them")
        return 1
    try:
        alias: dict[str, Any] | None = dict(lam.get_alias(FunctionName=name, Name=traffic_shift.ALIAS))
    except lam.exceptions.ResourceNotFoundException:
        alias = None
    if action == "undo":
        return _undo(lam, name, alias)
    versions = [v for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=name)
                for v in page.get("Versions", []) if v["Version"] != "$LATEST"]
    versions.sort(key=lambda v: int(v["Version"]), reverse=True)
    if action == "history":
        return _history(function, alias, versions, output)
    return _status(function, alias, versions, output)


def _record(alias: dict[str, Any] | None) -> traffic_shift.ShiftRecord | None:
    """The alias' shift record; its state read from CodeDeploy when a deployment shifts the alias."""
    from common.aws import client

    record = None if alias is None else traffic_shift.decode(alias.get("Description"))
    return traffic_shift.resolve(record, client("codedeploy")) if record and record.deployment else record


def _alarm_states(function: str, listed: list[str]) -> dict[str, dict[str, str]]:
    """The watched set a shift of ``function`` stops on (`controller.watched_alarms`), with each state and why."""
    from common.aws import client
    from controller import watched_alarms

    found = watched_alarms.watched(client("cloudwatch"), function, listed)
    return {a.name: {"state": a.state, "why": a.why} for a in found}


def _status(function: dict[str, Any], alias: dict[str, Any] | None, versions: list[dict[str, Any]],
            output: str) -> int:
    name = function["FunctionName"]
    record = _record(alias)
    weights = traffic_shift.weights(alias) if alias else {}
    alarms = _alarm_states(name, record.alarms if record else [])
    next_step = record.next_step_at() if record else None
    if output == "json":
        print(json.dumps({
            "function": name, "alias": traffic_shift.ALIAS if alias else None, "weights": weights,
            "shift": None if record is None else record.__dict__,
            "nextStepAt": next_step.isoformat() if next_step else None, "alarms": alarms,
            "latestVersion": versions[0]["Version"] if versions else None,
        }, indent=2))
        return 0
    print(f"function {name}")
    if alias is None:
        print(f"  no {traffic_shift.ALIAS!r} alias: no release yet (the Function kind makes it at its next apply)")
        return 0
    served = ", ".join(f"version {v} {w:.0%}" for v, w in weights.items())
    print(f"  alias {traffic_shift.ALIAS:<12}{served}")
    print(f"  published         {len(versions)} version(s), latest {versions[0]['Version'] if versions else '-'}")
    if record is None:
        print("  release           no shift record on the alias (made by hand?)")
        _print_alarms(alarms)
        return 0
    print(f"  release           {record.old or '-'} -> {record.new} by {record.strategy}: {record.state}"
          + (f" ({record.reason})" if record.reason else ""))
    print(f"  started           {record.started}")
    if record.deployment:
        print(f"  deployment        {record.deployment} (CodeDeploy shifts the alias and stops on its deployment "
              "group's alarms)")
    if record.state == traffic_shift.SHIFTING:
        schedule = ", ".join(f"{w:.0%} at +{m} min" for m, w in traffic_shift.parse(record.strategy).steps())
        print(f"  schedule          {schedule} (AWS time; the local plane time-scales it)")
        if next_step is not None:
            left = int((next_step - datetime.now(UTC)).total_seconds())
            print(f"  next step         {next_step.isoformat(timespec='seconds')} ({left} s from now)")
    _print_alarms(alarms)
    return 0


def _print_alarms(alarms: dict[str, dict[str, str]]) -> None:
    if alarms:
        print("  alarms watched    " + ", ".join(f"{n} {a['state']} ({a['why']})" for n, a in alarms.items())
              + "  [CloudWatch; own: on the function's metrics, listed: deployment.alarms]")
    else:
        print("  alarms watched    none (no alarm on the function's metrics, none listed in deployment.alarms)")


def _history(function: dict[str, Any], alias: dict[str, Any] | None, versions: list[dict[str, Any]],
             output: str) -> int:
    record = _record(alias)
    weights = traffic_shift.weights(alias) if alias else {}
    rows = [{"version": v["Version"], "codeSha256": v.get("CodeSha256"), "lastModified": v.get("LastModified"),
             "weight": weights.get(v["Version"], 0.0)} for v in versions]
    if output == "json":
        print(json.dumps({"function": function["FunctionName"], "versions": rows,
                          "latestRelease": None if record is None else record.__dict__}, indent=2))
        return 0
    from rich.table import Table

    from controller.commands._common import console

    table = Table(title=f"versions of {function['FunctionName']} (ListVersionsByFunction)")
    for column in ("version", "published", "code sha256", "alias weight", "release"):
        table.add_column(column, overflow="fold")
    for row in rows:
        release = ""
        if record is not None and row["version"] == record.new:
            release = f"{record.strategy} from {record.old or '-'}: {record.state}"
        table.add_row(row["version"], str(row["lastModified"]), str(row["codeSha256"])[:12],
                      f"{row['weight']:.0%}" if row["weight"] else "", release)
    out = console()
    out.print(table)
    out.print("Lambda keeps the outcome of the latest release only (the alias record); earlier outcomes are not kept")
    return 0


def _undo(lam: Any, name: str, alias: dict[str, Any] | None) -> int:
    if alias is None:
        raise HuntazeCtlError(f"{name} has no {traffic_shift.ALIAS!r} alias: nothing was released, nothing to undo")
    record = _record(alias)
    weights = traffic_shift.weights(alias)
    current = str(alias["FunctionVersion"])
    target: str | None
    if len(weights) > 1:  # a shift in progress: all traffic back to the old (primary) version
        target, how = current, "the shift in progress is rolled back"
        undone = next(v for v in weights if v != current)
    else:
        undone = current
        target, how = (record.old, "the version the last release replaced") if (
            record and record.new == current and record.old) else (None, "")
        if target is None:
            below = [int(v["Version"]) for page in lam.get_paginator("list_versions_by_function").paginate(
                FunctionName=name) for v in page.get("Versions", []) if v["Version"].isdigit()
                and int(v["Version"]) < int(current)]
            target, how = (str(max(below)), "the highest version below it") if below else (None, "")
    if target is None:
        raise HuntazeCtlError(f"{name}: the alias serves version {current} and there is no earlier version to go "
                              "back to; apply an older Function spec instead")
    if record is not None and record.deployment and record.state == traffic_shift.SHIFTING:
        _stop_deployment(record.deployment)
    base = record or traffic_shift.ShiftRecord(new=undone, old=target, strategy="AllAtOnce",
                                               started=traffic_shift.now_iso())
    # The undo is the outcome now, whatever the deployment it stopped reads: the record no longer names it.
    done = replace(base.finished(traffic_shift.ROLLED_BACK, f"rollout undo: version {target} again"), deployment="")
    lam.update_alias(FunctionName=name, Name=traffic_shift.ALIAS, FunctionVersion=target,
                     RoutingConfig={"AdditionalVersionWeights": {}}, Description=done.encode())
    print(f"{name}: alias {traffic_shift.ALIAS} -> version {target} ({how}; version {undone} serves nothing now)")
    print(f"note: the controller holds {name} on version {target} (held: rolled back) while the Function spec "
          f"still asks for version {undone}'s code and configuration; fix the spec and apply to release again")
    return 0


def _stop_deployment(deployment_id: str) -> None:
    """Stop the CodeDeploy deployment still shifting the alias (the undo moves the alias itself)."""
    from common.aws import client
    from controller.retrying import error_code

    try:
        client("codedeploy").stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=False)
    except Exception as exc:
        if error_code(exc) != "DeploymentAlreadyCompletedException":
            raise
