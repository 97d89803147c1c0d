"""Runs CodeDeploy's Lambda deployments locally, as CodeDeploy's engine does on AWS (moto's stores them only).

One `CodeDeployEngine.tick()` per tick of `localplane.plane`, after the alarms are evaluated. For every deployment
that is Created or InProgress (one ListDeployments), of an application with compute platform Lambda:

- its AppSpec (``revision.appSpecContent``: one ``AWS::Lambda::Function`` resource with Name, Alias,
  CurrentVersion, TargetVersion) names the alias and the two versions. A Created deployment whose alias does not
  serve CurrentVersion alone fails (CodeDeploy checks the same), else it moves to InProgress;
- the deployment group's ``alarmConfiguration`` alarms are the watched ones: one in ALARM (as `localplane.alarms`
  evaluated it) stops the deployment (Stopped, ``errorInformation`` ALARM_ACTIVE naming it) and, when
  ``autoRollbackConfiguration`` has DEPLOYMENT_STOP_ON_ALARM, returns the alias to CurrentVersion alone
  (``rollbackInfo`` says so);
- else the TargetVersion's weight follows the deployment configuration's schedule (`controller.traffic_shift`,
  CodeDeploy's predefined Lambda configurations), its minutes divided by the plane's time scale and counted from
  the deployment's startTime; at the last step the alias serves TargetVersion alone and the deployment Succeeded.
  ``HUNTAZE_DEPLOY_TIME_SCALE`` sets that divisor for deployments alone (`deploy_time_scale`): a soak test bakes
  a 5-minute canary in 20 s while alarm periods and rate windows keep the plane's scale.

Statuses move through the emulator's local-only action (`localplane.codedeploy_api.update_deployment_status`).
Not modelled: lifecycle hooks (BeforeAllowTraffic/AfterAllowTraffic), custom deployment configurations (such a
deployment fails, naming the predefined ones), and StopDeployment's autoRollbackEnabled (the alias stays where it
was stopped).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from common.aws import client
from localplane.codedeploy_api import CREATED, FAILED, IN_PROGRESS, STOPPED, SUCCEEDED, update_deployment_status

log = logging.getLogger(__name__)
CONFIG_PREFIX = "CodeDeployDefault.Lambda"
DEPLOY_TIME_SCALE_ENV = "HUNTAZE_DEPLOY_TIME_SCALE"


def deploy_time_scale(plane_scale: float) -> float:
    """``HUNTAZE_DEPLOY_TIME_SCALE`` if set, else ``plane_scale`` (the scale of alarm periods and rate windows)."""
    explicit = os.environ.get(DEPLOY_TIME_SCALE_ENV)
    if not explicit:
        return plane_scale
    try:
        value = float(explicit)
    except ValueError:
        value = math.nan
    if value <= 0 or not math.isfinite(value):
        raise ValueError(f"{DEPLOY_TIME_SCALE_ENV}={explicit!r}: must be a positive number (15 bakes "
                         "Canary10Percent5Minutes in 20 s); unset it to follow the plane's time scale")
    return value


class CodeDeployEngine:
    def __init__(self, scale: Callable[[], float] = lambda: 1.0) -> None:
        self.scale = scale

    def tick(self, now: datetime | None = None) -> None:
        codedeploy = client("codedeploy")
        active = codedeploy.list_deployments(includeOnlyStatuses=[CREATED, IN_PROGRESS]).get("deployments", [])
        for deployment_id in active:
            info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
            if info.get("computePlatform") != "Lambda":
                continue
            try:
                self._step(info, now or datetime.now(UTC))
            except _Failure as failure:
                update_deployment_status(deployment_id, FAILED, error={"code": failure.code,
                                                                       "message": str(failure)})
                log.warning("deployment %s failed: %s", deployment_id, failure)

    def _step(self, info: dict[str, Any], now: datetime) -> None:
        from controller import traffic_shift

        target = _lambda_target(info)
        strategy = _strategy(info.get("deploymentConfigName") or "")
        lam = client("lambda")
        alias = lam.get_alias(FunctionName=target["Name"], Name=target["Alias"])
        current, new = str(target["CurrentVersion"]), str(target["TargetVersion"])
        deployment_id = info["deploymentId"]
        if info["status"] == CREATED:
            if traffic_shift.weights(alias) != {current: 1.0}:
                raise _Failure("INVALID_ALIAS_VERSION", f"alias {target['Alias']} of {target['Name']} does not "
                               f"serve version {current} alone (the AppSpec's CurrentVersion)")
            update_deployment_status(deployment_id, IN_PROGRESS)
            info = client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        group = client("codedeploy").get_deployment_group(
            applicationName=info["applicationName"], deploymentGroupName=info["deploymentGroupName"]
        )["deploymentGroupInfo"]
        firing = _firing(group.get("alarmConfiguration") or {})
        if firing:
            self._stop_on_alarm(lam, target, deployment_id, group, firing)
            return
        # Never before the start: the emulator stamps startTime after this tick's clock was read.
        elapsed_min = max(0.0, (now - info["startTime"]).total_seconds() / 60 * self.scale())
        weight = strategy.weight_after(elapsed_min)
        if weight >= 1.0:
            _route(lam, target, new, {})
            update_deployment_status(deployment_id, SUCCEEDED, message=f"all traffic on version {new}")
            log.info("deployment %s: %s now serves version %s", deployment_id, target["Alias"], new)
        elif abs(traffic_shift.weights(alias).get(new, 0.0) - weight) > 1e-9:
            _route(lam, target, current, {new: weight})
            log.info("deployment %s: version %s takes %.0f%%", deployment_id, new, weight * 100)

    @staticmethod
    def _stop_on_alarm(lam: Any, target: dict[str, Any], deployment_id: str, group: dict[str, Any],
                       firing: list[str]) -> None:
        rollback_on = group.get("autoRollbackConfiguration") or {}
        rolls_back = bool(rollback_on.get("enabled")) and "DEPLOYMENT_STOP_ON_ALARM" in (rollback_on.get("events")
                                                                                        or [])
        current = str(target["CurrentVersion"])
        rollback = None
        if rolls_back:
            _route(lam, target, current, {})
            rollback = {"rollbackMessage": f"alias {target['Alias']} returned to version {current}"}
        error = {"code": "ALARM_ACTIVE", "message": f"alarm {', '.join(firing)} in ALARM"}
        update_deployment_status(deployment_id, STOPPED, error=error, rollback=rollback)
        log.warning("deployment %s stopped: %s%s", deployment_id, error["message"],
                    "; rolled back" if rolls_back else "")


class _Failure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _lambda_target(info: dict[str, Any]) -> dict[str, Any]:
    """The AppSpec's one Lambda resource's properties (Name, Alias, CurrentVersion, TargetVersion)."""
    revision = info.get("revision") or {}
    content = ((revision.get("appSpecContent") or {}).get("content")) or ""
    try:
        appspec = json.loads(content)
        [resource] = [r for entry in appspec["Resources"] for r in entry.values()
                      if r.get("Type") == "AWS::Lambda::Function"]
        properties: dict[str, Any] = resource["Properties"]
        for key in ("Name", "Alias", "CurrentVersion", "TargetVersion"):
            properties[key]
    except (ValueError, KeyError, TypeError) as exc:
        raise _Failure("INVALID_REVISION", f"the AppSpec needs one AWS::Lambda::Function resource with Name, Alias, "
                       f"CurrentVersion and TargetVersion (as JSON appSpecContent): {exc}") from None
    return properties


def _strategy(config_name: str) -> Any:
    from controller import traffic_shift

    try:
        return traffic_shift.parse(config_name.removeprefix(CONFIG_PREFIX))
    except ValueError:
        raise _Failure("INVALID_DEPLOYMENT_CONFIG", f"{config_name!r} is not one of CodeDeploy's predefined Lambda "
                       "configurations the local plane runs (CodeDeployDefault.Lambda" + ", ...Lambda".join(
                           traffic_shift.PREDEFINED) + ")") from None


def _firing(alarm_configuration: dict[str, Any]) -> list[str]:
    names = [a["name"] for a in alarm_configuration.get("alarms") or []]
    if not alarm_configuration.get("enabled") or not names:
        return []
    found = client("cloudwatch").describe_alarms(AlarmNames=names).get("MetricAlarms", [])
    return sorted(a["AlarmName"] for a in found if a.get("StateValue") == "ALARM")


def _route(lam: Any, target: dict[str, Any], version: str, extra: dict[str, float]) -> None:
    lam.update_alias(FunctionName=target["Name"], Name=target["Alias"], FunctionVersion=version,
                     RoutingConfig={"AdditionalVersionWeights": extra})
