"""Gate releases on a running local pipeline (`tests.helpers.pipeline`): shared by the release soak tests
(tests/pipeline/test_gate_release.py) and bench/rollout/function.py.

A release is what an operator does: a Function spec whose code differs (a copy of ``gate/`` with something
appended to its handler module) and whose ``deployment.strategy`` is a canary, applied with `huntazectl apply`
through the real reconciler. The gate names its CodeDeploy deployment group (manifests/gate.yaml,
``deployment.deploymentGroupRef``), so the Function kind publishes the version and creates a CodeDeploy deployment;
the local plane's CodeDeploy engine (`localplane.codedeploy_engine`) shifts the alias, watches the group's alarms
and rolls back. `alias()` reads the deployment's outcome from CodeDeploy, as `huntazectl rollout status` does.
The stack's own controller is kept stopped (its service at 0 tasks, in the release overlay too): it reconciles
the repository's specs, which would release the gate again.

`SteadyLoad` sends jobs at a fixed pace from a thread; `AdmissionLog` samples the gate's shared limit log in
Redis (`common.redis_keys.limit_slots`) often enough to see every admission of both versions (an entry stays
there for at least one window), so the limit can be checked over both versions' forwards.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import redis
import yaml

from common import redis_keys
from common.aws import client
from controller.cli import main as huntazectl
from localplane.stack import apply_argv
from tests.helpers.pipeline import REPO, Pipeline

FUNCTION = "huntaze-rate-limiter"
GROUP = "huntaze-rate-limiter-live"  # the gate's deployment group (manifests/gate.yaml)
CONTROLLER_SERVICE = "huntaze-controller"
FAILS_EVERY_BATCH = (
    "\n\ndef handler(event, context):  # a bad release: every invocation fails\n"
    "    raise RuntimeError('bad release: this version fails every batch')\n"
)
HARMLESS = "\n# a good release: same behaviour, new code\n"


def stop_stack_controller() -> None:
    """Before the plane starts: the in-stack controller would re-release the repository's gate."""
    client("ecs").update_service(cluster="huntaze", service=CONTROLLER_SERVICE, desiredCount=0)


def gate_variant(root: Path, name: str, appended: str) -> Path:
    """A copy of the gate package with ``appended`` at the end of its handler module."""
    target = root / name / "gate"
    shutil.copytree(REPO / "gate", target, ignore=shutil.ignore_patterns("__pycache__"))
    with (target / "handler.py").open("a") as handler:
        handler.write(appended)
    return target


def group_alarms() -> list[str]:
    """The alarms the gate's deployment group watches in manifests/gate.yaml."""
    for doc in yaml.safe_load_all((REPO / "manifests" / "gate.yaml").read_text()):
        if doc and doc.get("kind") == "CodeDeployDeploymentGroup" and doc["metadata"]["name"] == GROUP:
            return list(doc["spec"]["alarmConfiguration"]["alarms"])
    raise AssertionError(f"manifests/gate.yaml: no CodeDeployDeploymentGroup {GROUP}")


def release(pipe: Pipeline, root: Path, gate_dir: Path, strategy: str, watched: tuple[str, ...] = ()) -> None:
    """`huntazectl apply` of the stack with the gate's code from ``gate_dir``, released by a CodeDeploy deployment
    of ``strategy``; ``watched`` alarms join the deployment group's own (in the same apply, before the release)."""
    docs: list[dict[str, Any]] = [
        {"apiVersion": "huntaze.io/v1", "kind": "Function", "metadata": {"name": FUNCTION},
         "spec": {"code": {"packages": [str(gate_dir), "common"]}, "deployment": {"strategy": strategy}}},
        {"apiVersion": "huntaze.io/v1", "kind": "Service", "metadata": {"name": CONTROLLER_SERVICE},
         "spec": {"desiredCount": 0}},
    ]
    if watched:
        docs.append({"apiVersion": "huntaze.io/v1", "kind": "CodeDeployDeploymentGroup", "metadata": {"name": GROUP},
                     "spec": {"alarmConfiguration": {"alarms": [*group_alarms(), *watched]}}})
    overlay = root / f"release-{gate_dir.parent.name}.yaml"
    overlay.write_text("\n---\n".join(json.dumps(d) for d in docs) + "\n")
    load_overlay = root / "load-overlay.yaml"  # written by running_pipeline: the profile's scaled limits
    code = huntazectl(apply_argv(REPO, pipe.stack, (load_overlay, overlay)))
    assert code == 0, "apply of the release failed"


def alias() -> tuple[dict[str, float], dict[str, Any]]:
    """The live alias' weights and its shift record, its state and reason read from the CodeDeploy deployment it
    names (`controller.traffic_shift.resolve`: CodeDeploy never writes the record)."""
    from controller import traffic_shift

    found = client("lambda").get_alias(FunctionName=FUNCTION, Name=traffic_shift.ALIAS)
    record = traffic_shift.resolve(traffic_shift.decode(found.get("Description")), client("codedeploy"))
    return traffic_shift.weights(found), ({} if record is None else asdict(record))


def deployment(deployment_id: str) -> dict[str, Any]:
    """GetDeployment's deploymentInfo."""
    return cast(dict[str, Any], client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"])


# manifests/alarms.yaml: the gate's canary-sized error alarm (any error in a minute), one of the alarms the gate's
# deployment group watches (manifests/gate.yaml). lambda_errors_critical (more than 50 in 5 minutes) cannot trip
# on a 10 % canary at the seed's 10 jobs a minute.
RELEASE_ERROR_ALARM = "gate_release_errors"


@dataclass
class SteadyLoad:
    """Sends one job every ``interval_s`` from a thread (creators in turn), until stopped."""

    pipe: Pipeline
    interval_s: float
    creators: int = 5
    label: str = "steady"
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        started = time.monotonic()
        i = 0
        while not self._stop.is_set():
            creator = f"creator_{i % self.creators}"
            self.pipe.send([self.pipe.job("send_message", creator, text=f"{creator} {self.label} {i:04d}")])
            i += 1
            self._stop.wait(max(0.0, started + i * self.interval_s - time.monotonic()))


@dataclass
class AdmissionLog:
    """Samples the global limit's admission log (entries at or before Redis' now) every ``every_s``."""

    redis_url: str
    every_s: float = 0.5
    limit: str = "global"
    admitted: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="admission-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def times(self) -> list[float]:
        return sorted(self.admitted.values())

    def _run(self) -> None:
        conn = redis.Redis.from_url(self.redis_url)
        key = redis_keys.limit_slots(redis_keys.limit_name(self.limit))
        while not self._stop.wait(self.every_s):
            seconds, micros = conn.time()
            now_us = seconds * 1_000_000 + micros  # the limiter's scores are Redis TIME in microseconds
            entries = cast(list[tuple[bytes, float]], conn.zrangebyscore(key, "-inf", now_us, withscores=True))
            for member, score in entries:
                self.admitted[member.decode()] = float(score) / 1e6
