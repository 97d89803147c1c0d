"""`controller.watched_alarms.select`: which alarms a function's traffic shift watches (table test)."""

from __future__ import annotations

from typing import Any

import pytest

from controller.watched_alarms import WatchedAlarm, firing, select


def _alarm(name: str, state: str = "OK", dims: dict[str, str] | None = None,
           query_dims: dict[str, str] | None = None) -> dict[str, Any]:
    alarm: dict[str, Any] = {"AlarmName": name, "StateValue": state,
                             "Dimensions": [{"Name": k, "Value": v} for k, v in (dims or {}).items()]}
    if query_dims is not None:
        alarm["Metrics"] = [{"Id": "m", "MetricStat": {"Metric": {
            "Dimensions": [{"Name": k, "Value": v} for k, v in query_dims.items()]}}}]
    return alarm


@pytest.mark.parametrize(
    ("alarms", "listed", "expected"),
    [
        ([_alarm("errors", dims={"FunctionName": "gate"})], [], [WatchedAlarm("errors", "OK", "own")]),
        ([_alarm("qualified", "ALARM", dims={"FunctionName": "gate", "Resource": "gate:live"})], [],
         [WatchedAlarm("qualified", "ALARM", "own")]),
        ([_alarm("math", query_dims={"FunctionName": "gate"})], [], [WatchedAlarm("math", "OK", "own")]),
        ([_alarm("other", dims={"FunctionName": "gate-2"}), _alarm("queue", dims={"QueueName": "gate"})], [], []),
        ([_alarm("queue-age", "ALARM", dims={"QueueName": "q"})], ["queue-age", "gone"],
         [WatchedAlarm("queue-age", "ALARM", "listed"), WatchedAlarm("gone", "MISSING", "listed")]),
        ([_alarm("errors", dims={"FunctionName": "gate"})], ["errors"], [WatchedAlarm("errors", "OK", "listed")]),
    ],
    ids=["own-dimension", "own-with-qualifier", "own-in-metric-math", "not-this-function", "listed", "both-once"],
)
def test_select_own_and_listed_alarms(alarms: list[dict[str, Any]], listed: list[str],
                                      expected: list[WatchedAlarm]) -> None:
    assert select(alarms, "gate", listed) == expected


def test_firing_names_only_alarms_in_alarm() -> None:
    watched = [WatchedAlarm("a", "ALARM", "own"), WatchedAlarm("b", "OK", "own"),
               WatchedAlarm("c", "MISSING", "listed"), WatchedAlarm("d", "INSUFFICIENT_DATA", "listed")]
    assert firing(watched) == ["a"]
