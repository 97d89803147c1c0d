"""Completes the traffic shifts the Function kind starts, as CodeDeploy would on AWS (moto's CodeDeploy runs nothing).

Each tick of `localplane.plane`, for every function with a ``live`` alias whose record (`controller.traffic_shift`,
in the alias' Description) says SHIFTING:

- a watched alarm in ALARM, as `localplane.alarms` evaluated it, stops the shift: the alias serves the old
  version alone again and the record reads ROLLED_BACK with the alarm's name. Watched: the function's own alarms
  (every alarm on a metric with its FunctionName: the gate's errors and throttles) and the record's ``alarms``
  (the spec's ``deployment.alarms``), as `controller.watched_alarms` selects them;
- else the new version's weight follows the strategy's schedule, its minutes divided by the plane's time scale
  (a 5-minute canary lasts 50 s at scale 6); at the last step the alias serves the new version alone and the
  record reads COMPLETED.

An alias whose weights were changed by hand (the new version not the one routed to) is left alone, and so is a
shift whose record names a CodeDeploy deployment: `localplane.codedeploy_engine` runs those.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from common.aws import client

log = logging.getLogger(__name__)


class TrafficShifter:
    def __init__(self, scale: Callable[[], float] = lambda: 1.0) -> None:
        self.scale = scale

    def tick(self, now: datetime | None = None) -> None:
        from controller import traffic_shift

        lam = client("lambda")
        for page in lam.get_paginator("list_functions").paginate():
            for function in page.get("Functions", []):
                name = function["FunctionName"]
                try:
                    alias = lam.get_alias(FunctionName=name, Name=traffic_shift.ALIAS)
                except lam.exceptions.ResourceNotFoundException:
                    continue
                record = traffic_shift.decode(alias.get("Description"))
                if record is None or record.state != traffic_shift.SHIFTING or record.old is None:
                    continue
                if record.deployment:  # a CodeDeploy deployment shifts it (`localplane.codedeploy_engine`)
                    continue
                self._step(lam, name, alias, record, now or datetime.now(UTC))

    def _step(self, lam: Any, name: str, alias: dict[str, Any], record: Any, now: datetime) -> None:
        from controller import traffic_shift

        weights = traffic_shift.weights(alias)
        if str(alias["FunctionVersion"]) != record.old or set(weights) - {record.old, record.new}:
            return  # changed by hand since the shift started: not ours to move
        firing = self._alarms_in_alarm(name, record.alarms)
        if firing:
            done = record.finished(traffic_shift.ROLLED_BACK, f"alarm {', '.join(firing)} in ALARM")
            self._set(lam, name, record.old, {}, done.encode())
            log.warning("%s: shift %s -> %s rolled back: %s", name, record.old, record.new, done.reason)
            return
        weight = record.weight_at(now, self.scale())
        if weight >= 1.0:
            done = record.finished(traffic_shift.COMPLETED, f"{record.strategy}: all traffic on version {record.new}")
            self._set(lam, name, record.new, {}, done.encode())
            log.info("%s: shift %s -> %s completed", name, record.old, record.new)
        elif abs(weights.get(record.new, 0.0) - weight) > 1e-9:
            self._set(lam, name, record.old, {record.new: weight}, record.encode())
            log.info("%s: version %s now takes %.0f%%", name, record.new, weight * 100)

    @staticmethod
    def _set(lam: Any, name: str, version: str, extra: dict[str, float], description: str) -> None:
        from controller import traffic_shift

        lam.update_alias(FunctionName=name, Name=traffic_shift.ALIAS, FunctionVersion=version,
                         RoutingConfig={"AdditionalVersionWeights": extra}, Description=description)

    @staticmethod
    def _alarms_in_alarm(function: str, listed: list[str]) -> list[str]:
        from controller import watched_alarms

        return watched_alarms.firing(watched_alarms.watched(client("cloudwatch"), function, listed))
