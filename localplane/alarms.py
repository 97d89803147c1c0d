"""Evaluates the CloudWatch alarms stored in moto, as CloudWatch would, and sends their actions to SNS.

Started by `localplane.plane` (one `AlarmEvaluator.tick()` per plane tick); the benchmark and tests call `tick()`
directly. Moto stores alarms but never evaluates them. For each alarm the evaluator reads the last
``evaluationPeriods`` periods of its metric (or its metric-math inputs) with GetMetricData, applies the
statistic, the expression, ``datapointsToAlarm`` of ``evaluationPeriods``, the comparison and the missing-data
rule (`decide`), and on a change of state calls SetAlarmState (so DescribeAlarms shows the state, when it
changed, and the datapoints in StateReasonData) and publishes the AWS alarm notification to every topic of the
new state's actions.

Periods are the alarm's, divided by the time scale (`time_scale`): the same factor by which the local overlay
shortens the gate's rate-limit window (production ``global=10/60s``, local ``6/10s`` → 6), so a 5-minute alarm
period lasts 50 s in a demo. ``HUNTAZE_TIME_SCALE`` overrides it. Periods are the last N windows ending now
(a sliding evaluation, like CloudWatch's once a minute over the most recent periods).
"""

from __future__ import annotations

import ast
import json
import logging
import math
import operator
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from common.aws import client

log = logging.getLogger(__name__)
TIME_SCALE_ENV = "HUNTAZE_TIME_SCALE"
PRODUCTION_RATE_WINDOW_S = 60.0  # the seed's limit: 10 per 60 s (manifests/gate.yaml)
Series = list[float | None]

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


class ExpressionError(ValueError):
    """A metric-math expression uses something the local evaluator does not implement."""


def time_scale_from_limits(rate_limits: str, production_window_s: float = PRODUCTION_RATE_WINDOW_S) -> float:
    """``global=6/10s`` → 6.0: how much shorter the local rate window is than production's."""
    from gate.settings import parse_limits

    windows = [spec.window_ms / 1000 for spec in parse_limits(rate_limits)]
    return max(1.0, production_window_s / min(windows)) if windows else 1.0


def time_scale(function_environment: dict[str, str] | None = None) -> float:
    """``HUNTAZE_TIME_SCALE`` if set, else derived from the gate's HUNTAZE_RATE_LIMITS, else 1."""
    explicit = os.environ.get(TIME_SCALE_ENV)
    if explicit:
        value = float(explicit)
        if value <= 0 or not math.isfinite(value):
            raise ValueError(f"{TIME_SCALE_ENV}={explicit!r}: must be a positive number (6 makes 300 s last 50 s)")
        return value
    limits = (function_environment or {}).get("HUNTAZE_RATE_LIMITS")
    return time_scale_from_limits(limits) if limits else 1.0


# --- metric math -------------------------------------------------------------------------------------------------

def _arith(op: Callable[[float, float], float]) -> Callable[[float | None, float | None], float | None]:
    def apply(a: float | None, b: float | None) -> float | None:
        if a is None or b is None:
            return None
        try:
            return float(op(a, b))
        except ZeroDivisionError:
            return None
    return apply


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_COMPARE = {ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}


def expression_ids(expression: str) -> set[str]:
    """The metric ids an expression names (its function names excluded)."""
    try:
        tree = ast.parse(expression.replace("&&", " and ").replace("||", " or "), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse metric math {expression!r}: {exc.msg}") from None
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def evaluate_expression(expression: str, inputs: dict[str, Series], length: int) -> Series:
    """CloudWatch metric math over aligned series: + - * /, comparisons, FILL(x, v), IF(c, a, b).

    A missing point stays missing through arithmetic (CloudWatch drops timestamps a series lacks) unless FILL
    supplies it; division by zero is missing.
    """
    try:
        tree = ast.parse(expression.replace("&&", " and ").replace("||", " or "), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse metric math {expression!r}: {exc.msg}") from None

    def ev(node: ast.AST) -> Series:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return [float(node.value)] * length
        if isinstance(node, ast.Name):
            if node.id not in inputs:
                raise ExpressionError(f"metric math {expression!r} names unknown id {node.id!r}")
            return list(inputs[node.id])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return [None if v is None else -v for v in ev(node.operand)]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            fn = _arith(_BINARY[type(node.op)])
            return [fn(a, b) for a, b in zip(ev(node.left), ev(node.right), strict=True)]
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            cmp = _COMPARE[type(node.ops[0])]
            return [None if a is None or b is None else float(cmp(a, b))
                    for a, b in zip(ev(node.left), ev(node.comparators[0]), strict=True)]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name, args = node.func.id.upper(), [ev(a) for a in node.args]
            if name == "FILL" and len(args) == 2:
                return [b if a is None else a for a, b in zip(*args, strict=True)]
            if name == "IF" and len(args) == 3:
                return [None if c is None else (a if c else b) for c, a, b in zip(*args, strict=True)]
        raise ExpressionError(
            f"metric math {expression!r}: {ast.dump(node)[:60]} is not supported locally "
            "(supported: numbers, ids, + - * /, comparisons, FILL, IF)"
        )

    return ev(tree)


# --- the decision ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    state: str  # OK | ALARM | INSUFFICIENT_DATA
    breaching: int
    value: float | None  # the datapoint that tripped the alarm (the newest breaching), else the newest seen
    reason: str


def decide(alarm: dict[str, Any], values: Series, current_state: str) -> Decision:
    """CloudWatch's rule: ALARM when at least M of the last N datapoints breach, with missing data treated by
    ``TreatMissingData`` (missing = INSUFFICIENT_DATA when all N are missing; ignore = keep the current state)."""
    threshold = float(alarm["Threshold"])
    compare = _COMPARISONS[alarm["ComparisonOperator"]]
    n = int(alarm["EvaluationPeriods"])
    m = int(alarm.get("DatapointsToAlarm") or n)
    treat = alarm.get("TreatMissingData") or "missing"
    present = [v for v in values if v is not None]
    missing = len(values) - len(present)
    breaching_values = [v for v in values if v is not None and compare(v, threshold)]
    breaching = len(breaching_values) + (missing if treat == "breaching" else 0)
    newest = present[-1] if present else None
    shown = breaching_values[-1] if breaching_values else newest
    if not present and treat in ("missing", "ignore"):
        state = current_state if treat == "ignore" else "INSUFFICIENT_DATA"
        return Decision(state, 0, None, f"no datapoints in the last {n} period(s) (TreatMissingData={treat})")
    state = "ALARM" if breaching >= m else "OK"
    op = alarm["ComparisonOperator"].replace("Threshold", "").replace("ThanOrEqualTo", " or equal to ")
    reason = (f"Threshold Crossed: {breaching} out of the last {n} datapoints "
              f"[{', '.join('missing' if v is None else f'{v:g}' for v in reversed(values))}] "
              f"{'were' if state == 'ALARM' else 'were not'} {op.lower()} the threshold ({threshold:g}) "
              f"(minimum {m} datapoints for OK -> ALARM transition).")
    return Decision(state, breaching, shown, reason)


# --- reading the metrics -----------------------------------------------------------------------------------------

def _period(alarm: dict[str, Any]) -> int:
    if alarm.get("Period"):
        return int(alarm["Period"])
    periods = [int(q["MetricStat"]["Period"]) for q in alarm.get("Metrics", []) if q.get("MetricStat")]
    return min(periods) if periods else 60


def _queries(alarm: dict[str, Any], prefix: str, period_s: int) -> list[dict[str, Any]]:
    if alarm.get("Metrics"):
        out = []
        for q in alarm["Metrics"]:
            if q.get("MetricStat"):
                stat = dict(q["MetricStat"], Period=period_s)
                out.append({"Id": f"{prefix}{q['Id']}", "MetricStat": stat, "ReturnData": True})
        return out
    statistic = alarm.get("Statistic") or alarm.get("ExtendedStatistic")
    metric = {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
              "Dimensions": alarm.get("Dimensions", [])}
    return [{"Id": f"{prefix}m", "MetricStat": {"Metric": metric, "Period": period_s, "Stat": statistic},
             "ReturnData": True}]


def alarm_series(alarm: dict[str, Any], raw: dict[str, Series], prefix: str, n: int) -> Series:
    """The alarm's own series (its metric, or its returned expression) from the raw query results."""
    if not alarm.get("Metrics"):
        return raw.get(f"{prefix}m", [None] * n)
    inputs = {q["Id"]: raw.get(f"{prefix}{q['Id']}", [None] * n) for q in alarm["Metrics"] if q.get("MetricStat")}
    # An expression may refer to another expression declared before or after it (CloudWatch resolves them as a
    # graph): evaluate in dependency order, each once its ids are known; a cycle or an unknown id is an error.
    pending = {q["Id"]: q["Expression"] for q in alarm["Metrics"] if q.get("Expression")}
    while pending:
        ready = [i for i, e in pending.items() if expression_ids(e) <= inputs.keys()]
        if not ready:
            unknown = sorted(set().union(*(expression_ids(e) for e in pending.values())) - inputs.keys())
            raise ExpressionError(f"metric math of alarm {alarm.get('AlarmName')!r}: ids {unknown} are unknown or "
                                  "refer to each other in a cycle")
        for i in ready:
            inputs[i] = evaluate_expression(pending.pop(i), inputs, n)
    returned = [q["Id"] for q in alarm["Metrics"] if q.get("ReturnData", True) and q["Id"] in inputs]
    return inputs[returned[0]] if returned else [None] * n


def fetch(queries: list[dict[str, Any]], start: int, period_s: int, n: int) -> dict[str, Series]:
    """One GetMetricData (up to 500 queries) → per query id, N per-period values, oldest first."""
    out: dict[str, Series] = {q["Id"]: [None] * n for q in queries}
    cloudwatch = client("cloudwatch")
    for chunk_start in range(0, len(queries), 500):
        chunk = queries[chunk_start:chunk_start + 500]
        response = cloudwatch.get_metric_data(
            MetricDataQueries=chunk, StartTime=datetime.fromtimestamp(start, UTC),
            EndTime=datetime.fromtimestamp(start + n * period_s, UTC), ScanBy="TimestampAscending",
        )
        for result in response["MetricDataResults"]:
            for ts, value in zip(result["Timestamps"], result["Values"], strict=True):
                index = round((ts.timestamp() - start) / period_s)
                if 0 <= index < n:
                    out[result["Id"]][index] = float(value)
    return out


# --- the evaluator -----------------------------------------------------------------------------------------------

def notification(alarm: dict[str, Any], decision: Decision, old_state: str, at: datetime, *, region: str,
                 account: str) -> dict[str, Any]:
    """The JSON CloudWatch publishes to an alarm's SNS topics."""
    trigger: dict[str, Any] = {
        "Period": _period(alarm), "EvaluationPeriods": alarm["EvaluationPeriods"],
        "ComparisonOperator": alarm["ComparisonOperator"], "Threshold": alarm["Threshold"],
        "TreatMissingData": alarm.get("TreatMissingData", "missing"),
    }
    if alarm.get("Metrics"):
        trigger["Metrics"] = alarm["Metrics"]
    else:
        trigger.update(MetricName=alarm.get("MetricName"), Namespace=alarm.get("Namespace"),
                       Statistic=alarm.get("Statistic"), Dimensions=alarm.get("Dimensions", []))
    return {
        "AlarmName": alarm["AlarmName"], "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": str(alarm.get("AlarmConfigurationUpdatedTimestamp")),
        "NewStateValue": decision.state, "NewStateReason": decision.reason,
        "StateChangeTime": at.isoformat(timespec="milliseconds"), "Region": region,
        "AlarmArn": alarm.get("AlarmArn"), "OldStateValue": old_state, "Trigger": trigger,
    }


@dataclass
class Transition:
    alarm: str
    old: str
    new: str
    value: float | None
    at: float


@dataclass
class AlarmEvaluator:
    """One `tick()` evaluates every metric alarm of the account (moto) and acts on state changes."""

    scale: float | Callable[[], float] = 1.0
    clock: Callable[[], float] = field(default=lambda: time.time())  # noqa: PLW0108 - late lookup: freezegun
    transitions: list[Transition] = field(default_factory=list)
    api_calls: int = 0

    def _scale(self) -> float:
        return self.scale() if callable(self.scale) else self.scale

    def tick(self) -> list[Transition]:
        cloudwatch = client("cloudwatch")
        alarms: list[dict[str, Any]] = []
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
            alarms.extend(page.get("MetricAlarms", []))
        now = math.ceil(self.clock())  # windows end after the newest datum published so far
        scale = self._scale()
        groups: dict[tuple[int, int], list[tuple[int, dict[str, Any]]]] = {}
        for i, alarm in enumerate(alarms):
            period = max(1, round(_period(alarm) / scale))
            groups.setdefault((period, int(alarm["EvaluationPeriods"])), []).append((i, alarm))
        made: list[Transition] = []
        for (period, n), members in groups.items():
            start = now - n * period
            queries = [q for i, a in members for q in _queries(a, f"a{i}_", period)]
            raw = fetch(queries, start, period, n)
            for i, alarm in members:
                try:
                    values = alarm_series(alarm, raw, f"a{i}_", n)
                except ExpressionError as exc:
                    log.error("alarm %s: %s", alarm["AlarmName"], exc)
                    continue
                decision = decide(alarm, values, alarm.get("StateValue", "INSUFFICIENT_DATA"))
                change = self._apply(alarm, decision, values, start, period)
                if change:
                    made.append(change)
        self.transitions.extend(made)
        return made

    def _apply(self, alarm: dict[str, Any], decision: Decision, values: Sequence[float | None], start: int,
               period: int) -> Transition | None:
        old = alarm.get("StateValue", "INSUFFICIENT_DATA")
        if decision.state == old:
            return None
        at = datetime.now(UTC)
        reason_data = {
            "version": "1.0", "queryDate": at.isoformat(timespec="milliseconds"),
            "startDate": datetime.fromtimestamp(start, UTC).isoformat(), "period": period,
            "threshold": alarm["Threshold"], "recentDatapoints": [v for v in values if v is not None],
            "evaluatedDatapoints": [
                {"timestamp": datetime.fromtimestamp(start + k * period, UTC).isoformat(), "value": v}
                for k, v in enumerate(values) if v is not None
            ],
            "trippingValue": decision.value,
        }
        client("cloudwatch").set_alarm_state(
            AlarmName=alarm["AlarmName"], StateValue=decision.state, StateReason=decision.reason[:1023],
            StateReasonData=json.dumps(reason_data),
        )
        if alarm.get("ActionsEnabled", True):
            self._notify(alarm, decision, old, at)
        log.info("alarm %s: %s -> %s (value %s)", alarm["AlarmName"], old, decision.state, decision.value)
        return Transition(alarm["AlarmName"], old, decision.state, decision.value, self.clock())

    def _notify(self, alarm: dict[str, Any], decision: Decision, old: str, at: datetime) -> None:
        actions = {"ALARM": "AlarmActions", "OK": "OKActions", "INSUFFICIENT_DATA": "InsufficientDataActions"}
        arns = [a for a in alarm.get(actions[decision.state], []) if a.startswith("arn:aws:sns:")]
        if not arns:
            return
        parts = arns[0].split(":")
        message = notification(alarm, decision, old, at, region=parts[3], account=parts[4])
        subject = f'{decision.state}: "{alarm["AlarmName"]}" in {parts[3]}'[:99]
        sns = client("sns")
        for arn in arns:
            try:
                sns.publish(TopicArn=arn, Subject=subject, Message=json.dumps(message, default=str))
            except sns.exceptions.NotFoundException:
                log.error("alarm %s: action topic %s does not exist", alarm["AlarmName"], arn)
