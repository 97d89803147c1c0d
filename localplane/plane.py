"""The local plane's control loop: does what AWS would do with the applied specs.

Started by `huntazectl up` (and by end-to-end tests) once the controller has applied the stack to the moto
server. Every tick it discovers enabled event source mappings (and starts a `MappingRunner` for each new one),
syncs every ECS service's task processes (`ServiceRunner`), and applies target tracking (`Autoscaler`). It
then publishes the AWS metrics moto lacks (`MetricsPublisher`), evaluates the alarms (`AlarmEvaluator`) and
moves the Lambda aliases in a traffic shift along their schedule, or back on an alarm (`TrafficShifter` for
shifts the Function kind records, `CodeDeployEngine` for CodeDeploy deployments: the gate's releases, as
manifests/gate.yaml names its deployment group).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from common.aws import client
from localplane.alarms import AlarmEvaluator, time_scale
from localplane.autoscaler import Autoscaler
from localplane.codedeploy_engine import CodeDeployEngine, deploy_time_scale
from localplane.mapping_runner import MappingRunner
from localplane.metrics import MetricsPublisher, TaskProcess
from localplane.service_runner import ServiceRunner
from localplane.traffic_shifter import TrafficShifter

log = logging.getLogger(__name__)


class LocalPlane:
    def __init__(self, extra_env: dict[str, str], log_dir: Path, tick_s: float = 2.0) -> None:
        self.extra_env = extra_env
        self.log_dir = log_dir
        self.tick_s = tick_s
        self.mappings: dict[str, MappingRunner] = {}
        self.services: dict[str, ServiceRunner] = {}
        self.autoscaler = Autoscaler()
        self.metrics = MetricsPublisher(scale=self._time_scale)
        self.alarms = AlarmEvaluator(scale=self._time_scale)
        self.shifts = TrafficShifter(scale=self._time_scale)
        self.deployments = CodeDeployEngine(scale=lambda: deploy_time_scale(self._time_scale()))
        self._scale: float | None = None
        self._function_env: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="local-plane", daemon=True)
        self._function_log = (log_dir / "functions.log").open("ab")

    def start(self) -> None:
        self.tick()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        for runner in self.mappings.values():
            runner.stop()
        for runner in self.mappings.values():
            runner.join(timeout=30)
        for service in self.services.values():
            service.stop_all()
        self._function_log.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception:  # the plane keeps running through transient errors, like AWS's own
                log.exception("local plane tick failed")

    def tick(self) -> None:
        self._sync_mappings()
        self.autoscaler.tick()
        self._sync_services()
        self.metrics.publish({
            (svc.cluster, svc.service): [TaskProcess(*p) for p in svc.processes()] for svc in self.services.values()
        })
        self.alarms.tick()
        self.shifts.tick()
        self.deployments.tick()

    def _time_scale(self) -> float:
        """Alarm periods shrink by the factor the local overlay shrinks the gate's rate window (see alarms.py)."""
        if self._scale is not None:
            return self._scale
        scale = time_scale(self._function_env)
        if self.mappings:  # the gate's limits are known once its mapping runs; until then, no scaling
            self._scale = scale
            log.info("alarm periods time-scaled by %.3g", scale)
        return scale

    def _sync_mappings(self) -> None:
        lam = client("lambda")
        for mapping in lam.list_event_source_mappings().get("EventSourceMappings", []):
            uuid = mapping["UUID"]
            if uuid in self.mappings or mapping.get("State", "Enabled") not in ("Enabled", "Enabling", "Creating"):
                continue
            function: dict[str, Any] = lam.get_function_configuration(FunctionName=mapping["FunctionArn"])
            self._function_env.update(function.get("Environment", {}).get("Variables", {}))
            runner = MappingRunner(mapping, function, self.extra_env, self._function_log,
                                   recorder=self.metrics.lambdas, code_cache=self.log_dir / "lambda-code")
            runner.start()
            self.mappings[uuid] = runner
            log.info("polling %s for %s", mapping["EventSourceArn"], mapping["FunctionArn"])

    def _sync_services(self) -> None:
        ecs = client("ecs")
        for cluster in ecs.list_clusters().get("clusterArns", []):
            for service_arn in ecs.list_services(cluster=cluster).get("serviceArns", []):
                if service_arn not in self.services:
                    name = service_arn.rsplit("/", 1)[-1]
                    self.services[service_arn] = ServiceRunner(cluster, name, self.extra_env, self.log_dir,
                                                               scale=self._time_scale)
                self.services[service_arn].sync()
