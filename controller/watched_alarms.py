"""The alarms a function's traffic shift watches: the function's own alarms plus those its spec lists.

A function's own alarms are every CloudWatch alarm on one of its metrics: a metric (or a metric-math query's
metric) with the dimension ``FunctionName`` equal to the function's name, whatever its other dimensions (such as
``Resource: NAME:live``). For the gate that is ``lambda_errors_critical`` and ``lambda_throttles_high``
(manifests/alarms.yaml); an alarm added there later is watched without a spec change. The spec's
``deployment.alarms`` add any other (an alarm on the gate's EMF metrics, a composite of queue alarms...).

Called by whatever follows a shift (the local plane's `localplane.traffic_shifter` on every tick, so an alarm in
ALARM stops the shift and returns the alias to the old version) and by `huntazectl rollout status function`,
which shows the same set with each alarm's state, so what an operator sees is what stops a shift.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MISSING = "MISSING"
ALARM = "ALARM"


@dataclass(frozen=True)
class WatchedAlarm:
    name: str
    state: str  # OK, ALARM, INSUFFICIENT_DATA, or MISSING (listed in the spec, no such alarm)
    why: str  # "own" (on the function's metrics) or "listed" (deployment.alarms)


def is_own(alarm: dict[str, Any], function: str) -> bool:
    """Whether a DescribeAlarms MetricAlarm watches one of ``function``'s metrics."""
    dimension_sets = [alarm.get("Dimensions") or []]
    dimension_sets += [((q.get("MetricStat") or {}).get("Metric") or {}).get("Dimensions") or []
                       for q in alarm.get("Metrics") or []]
    return any(d.get("Name") == "FunctionName" and d.get("Value") == function for ds in dimension_sets for d in ds)


def select(alarms: Iterable[dict[str, Any]], function: str, listed: Iterable[str]) -> list[WatchedAlarm]:
    """The watched set from DescribeAlarms' MetricAlarms and CompositeAlarms: own first, then listed, by name."""
    by_name = {a["AlarmName"]: a for a in alarms}
    wanted = list(dict.fromkeys(listed))
    own = sorted(n for n, a in by_name.items() if is_own(a, function) and n not in wanted)
    watched = [WatchedAlarm(n, str(by_name[n].get("StateValue")), "own") for n in own]
    watched += [WatchedAlarm(n, str(by_name[n].get("StateValue")) if n in by_name else MISSING, "listed")
                for n in wanted]
    return watched


def watched(cloudwatch: Any, function: str, listed: Iterable[str]) -> list[WatchedAlarm]:
    """Read every alarm of the account (DescribeAlarms, paginated) and select ``function``'s watched set."""
    found: list[dict[str, Any]] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
        found.extend(page.get("MetricAlarms", []))
        found.extend(page.get("CompositeAlarms", []))
    return select(found, function, listed)


def firing(alarms: Iterable[WatchedAlarm]) -> list[str]:
    """Names of the watched alarms in ALARM: each one stops a shift."""
    return [a.name for a in alarms if a.state == ALARM]
