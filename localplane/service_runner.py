"""Keeps an ECS service's desired count of task processes running locally.

Moto stores ECS services but runs no tasks, so `localplane.plane` gives each service a `ServiceRunner`. A task is a
child process running the container's command from the checkout (the task definition's docker label
``huntaze.io/local-command``, default ``python -m scraper``) with the container's environment and its secrets
resolved from Secrets Manager, as the ECS agent would inject them. Scale-in stops tasks with SIGTERM and the
container's stopTimeout (ECS's 30 s default), then SIGKILL, exactly like ECS; crashed tasks are replaced.

A new task definition is rolled out like ECS's rolling update with ``maximumPercent`` room for one extra task: one
new task is started, and once its container health check passes (the task definition's ``healthCheck`` command,
``python -m scraper.healthcheck`` for the scraper, run with the task's environment; no health check: healthy once it
has run for ``NO_CHECK_GRACE_S``), one old task is stopped (SIGTERM, stopTimeout), until only new tasks run. A new
task that exits, or fails its check ``retries`` times in a row after ``startPeriod``, counts as a failure. The
deployment circuit breaker (the service's ``deploymentConfiguration``, as DescribeServices returns it) trips after
ECS's threshold of consecutive failures, half the desired count with a minimum of 3
(`localplane.deployments.failure_threshold`; a healthy new task resets the count). With rollback enabled the runner
points the service back at the last COMPLETED task definition (UpdateService, so moto shows it); the old tasks run
on untouched throughout, so no job is lost. Without rollback the deployment is FAILED and no further new task is
started until the next UpdateService. The deployment's ``alarms`` act the same way: one of them in ALARM (as
`localplane.alarms` evaluates them) while it is in progress fails it, and rolls back if ``alarms.rollback`` is set
(ECS also watches them for a bake time after; the local plane does not). Health check intervals and the start period
are divided by the plane's time scale (`localplane.alarms.time_scale`); the command's timeout is not (a command does
not run faster). Each deployment is recorded in ``<log dir>/deployments/`` (`localplane.deployments`), since moto's
DescribeServices ``deployments`` never change; `huntazectl rollout` reads it. The first tasks of a service,
scale-out and the replacement of a crashed task start at once, without waiting for health.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.aws import client
from localplane import deployments
from localplane.deployments import COMPLETED, FAILED, IN_PROGRESS, ROLLED_BACK, Deployment
from localplane.services import free_port

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_COMMAND_LABEL = "huntaze.io/local-command"
ECS_DEFAULT_STOP_TIMEOUT_S = 30
# A container without a health check is good for ECS once RUNNING; a local process is "running" at once, so it
# must still be alive this long (not time-scaled: a process does not start faster) to count as started.
NO_CHECK_GRACE_S = 3.0


def resolve_secret(value_from: str) -> str:
    """``arn:...:secret:NAME[:json-key:version-stage:version-id]`` or a plain name → the secret's value."""
    secret_id, json_key = value_from, ""
    if value_from.startswith("arn:"):
        parts = value_from.split(":")
        secret_id = ":".join(parts[:7])
        json_key = parts[7] if len(parts) > 7 else ""
    value = str(client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    return str(json.loads(value)[json_key]) if json_key else value


def container_environment(container: dict[str, Any]) -> dict[str, str]:
    env = {item["name"]: item["value"] for item in container.get("environment", [])}
    for secret in container.get("secrets", []):
        env[secret["name"]] = resolve_secret(secret["valueFrom"])
    return env


@dataclass
class Task:
    proc: subprocess.Popen[bytes]
    task_definition: str
    cpu_units: int = 1024
    memory_mib: int = 2048
    log_path: Path | None = None
    task_arn: str | None = None  # the task as registered in moto, so DescribeTasks shows it like ECS would
    env: dict[str, str] = field(default_factory=dict)
    health: HealthCheck | None = None  # None: a task started without waiting for health (or with no check)
    healthy: bool = True
    stop_timeout_s: float = ECS_DEFAULT_STOP_TIMEOUT_S
    started_at: float = field(default_factory=time.monotonic)


@dataclass
class HealthCheck:
    """A container health check as ECS runs it: ``command`` every ``interval_s``, UNHEALTHY after ``retries``
    failures in a row once ``start_period_s`` is over (a pass within the start period counts)."""

    argv: list[str]
    interval_s: float
    timeout_s: float
    retries: int
    start_period_s: float
    started: float = field(default_factory=time.monotonic)
    next_at: float = 0.0
    failures: int = 0
    last_output: str = ""

    @classmethod
    def of(cls, container: dict[str, Any], scale: float) -> HealthCheck | None:
        check = container.get("healthCheck")
        if not check or not check.get("command"):
            return None
        command = list(check["command"])
        if command[0] == "CMD-SHELL":
            argv = ["/bin/sh", "-c", " ".join(command[1:])]
        else:
            argv = command[1:] if command[0] == "CMD" else command
            if argv and argv[0] in ("python", "python3"):
                argv[0] = sys.executable
        return cls(argv=argv, interval_s=float(check.get("interval", 30)) / scale,
                   timeout_s=float(check.get("timeout", 5)), retries=int(check.get("retries", 3)),
                   start_period_s=float(check.get("startPeriod", 0)) / scale)

    def probe(self, env: dict[str, str]) -> bool | None:
        """True: healthy; False: unhealthy; None: not decided yet (not due, or a failure still within limits)."""
        now = time.monotonic()
        if now < self.next_at:
            return None
        self.next_at = now + self.interval_s
        try:
            done = subprocess.run(self.argv, env=env, cwd=REPO_ROOT, capture_output=True, timeout=self.timeout_s,
                                  check=False)
            passed = done.returncode == 0
            self.last_output = (done.stdout + done.stderr).decode(errors="replace").strip()[-200:]
        except subprocess.TimeoutExpired:
            passed, self.last_output = False, f"health check timed out after {self.timeout_s:g} s"
        if passed:
            return True
        if now - self.started < self.start_period_s:
            return None
        self.failures += 1
        return False if self.failures >= self.retries else None


def _last_line(path: Path | None) -> str:
    """The last non-empty line of a task's log: what it said before it exited (its exit reason)."""
    if path is None:
        return ""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 4096))
            lines = [ln.strip() for ln in handle.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    if not lines:
        return ""
    try:  # a JSON log line (common.jsonlog): its message and error say why
        record = json.loads(lines[-1])
    except ValueError:
        return lines[-1]
    if not isinstance(record, dict) or "message" not in record:
        return lines[-1]
    return ": ".join(str(record[k]) for k in ("message", "error") if record.get(k))


@dataclass
class ServiceRunner:
    cluster: str
    service: str
    extra_env: dict[str, str]
    log_dir: Path
    tasks: list[Task] = field(default_factory=list)
    started: int = 0
    scale: Callable[[], float] = lambda: 1.0  # the plane's time scale: health check intervals shrink by it
    history: list[Deployment] = field(default_factory=list)
    _saved: str = ""

    def __post_init__(self) -> None:
        self.history = deployments.load(self.deployments_file)

    @property
    def deployments_file(self) -> Path:
        return deployments.path_for(self.log_dir, self.cluster, self.service)

    @property
    def deployment(self) -> Deployment | None:
        return self.history[-1] if self.history else None

    def sync(self) -> None:
        """Match running processes to the service's desiredCount and current task definition."""
        ecs = client("ecs")
        described = ecs.describe_services(cluster=self.cluster, services=[self.service])["services"]
        if not described or described[0].get("status") != "ACTIVE":
            self.stop_all()
            return
        svc = described[0]
        task_def_arn = svc["taskDefinition"]
        desired = int(svc.get("desiredCount", 0))
        current = self.deployment
        if current is None or current.task_definition != task_def_arn:
            current = self._begin(svc, task_def_arn, desired)
        current.desired_count = desired
        self.tasks = [t for t in self.tasks if self._alive_or_reaped(t, current)]
        old = [t for t in self.tasks if t.task_definition != task_def_arn]
        if old and current.rollout_state == IN_PROGRESS:
            self._roll(current, old, desired)
        elif not old:
            self._scale_to(task_def_arn, desired)
            if current.rollout_state == IN_PROGRESS:
                self._finish(current, COMPLETED, f"{len(self.tasks)} task(s) of the new task definition running")
        # FAILED without rollback: the old tasks run on; no new task until the next UpdateService.
        self._record(current)

    def _scale_to(self, task_def_arn: str, desired: int) -> None:
        """No replacement under way: start or stop tasks at once (first tasks, scaling, crashed tasks)."""
        while len(self.tasks) > desired:
            self._stop(self.tasks.pop())
        if len(self.tasks) < desired:
            spec = client("ecs").describe_task_definition(taskDefinition=task_def_arn)["taskDefinition"]
            while len(self.tasks) < desired:
                self.tasks.append(self._start(spec, task_def_arn))

    def _roll(self, current: Deployment, old: list[Task], desired: int) -> None:
        """One step of a rolling replacement: health-check the new task, stop an old one, start the next."""
        target = current.task_definition
        pending = [t for t in self.tasks if t.task_definition == target and not t.healthy]
        for task in pending:
            verdict = self._health(task)
            if verdict is True:
                task.healthy = True
                current.consecutive_failures = 0
                log.info("new task of %s is healthy", self.service)
            elif verdict is False:
                self._stop(task, reason="Task failed container health checks: "
                                        f"{task.health.last_output if task.health else ''}"[:255])
                self.tasks.remove(task)
                self._failed(current)
        if self._alarm_tripped(current) or self._breaker_tripped(current):
            return
        new = [t for t in self.tasks if t.task_definition == target and t.healthy]
        while old and len(new) + len(old) > desired:
            task = old.pop(0)
            self._stop(task, task.stop_timeout_s)  # one old task for each healthy new one
            self.tasks.remove(task)
        if not old:
            return  # sync finishes the deployment (and starts any missing task) on this pass
        if not any(not t.healthy for t in self.tasks if t.task_definition == target) and len(new) < desired:
            spec = client("ecs").describe_task_definition(taskDefinition=target)["taskDefinition"]
            task = self._start(spec, target)
            task.healthy = False
            self.tasks.append(task)
        current.running_count, current.old_running_count = len(new), len(old)

    def _health(self, task: Task) -> bool | None:
        if task.health is None:  # no health check: healthy once RUNNING for ECS; here, alive after a grace
            if task.proc.poll() is not None:
                return False
            return True if time.monotonic() - task.started_at >= NO_CHECK_GRACE_S else None
        return task.health.probe(task.env)

    def _failed(self, current: Deployment) -> None:
        current.failed_tasks += 1
        current.consecutive_failures += 1
        log.warning("a new task of %s failed (%d in a row, breaker at %d)", self.service,
                    current.consecutive_failures, current.failure_threshold)

    def _breaker_tripped(self, current: Deployment) -> bool:
        breaker = current.circuit_breaker
        if not breaker.get("enable") or current.consecutive_failures < current.failure_threshold:
            return False
        why = (f"circuit breaker: {current.consecutive_failures} new task(s) in a row failed to start or pass "
               f"their health check (threshold {current.failure_threshold})")
        self._stop_deployment(current, why, bool(breaker.get("rollback")))
        return True

    def _alarm_tripped(self, current: Deployment) -> bool:
        """ECS's alarm rollback: a watched CloudWatch alarm in ALARM while the deployment is in progress fails it.

        Locally the alarms are those `localplane.alarms` evaluates (moto stores alarms, never evaluates them).
        """
        alarms = current.alarms
        names = list(alarms.get("alarmNames", []))
        if not alarms.get("enable") or not names:
            return False
        try:
            found = client("cloudwatch").describe_alarms(AlarmNames=names[:100])  # moto ignores StateValue then
        except Exception:  # an unreadable alarm state never stops a deployment by itself
            log.warning("could not read the deployment alarms of %s", self.service, exc_info=True)
            return False
        firing = sorted(a["AlarmName"] for a in found.get("MetricAlarms", []) if a.get("StateValue") == "ALARM")
        if not firing:
            return False
        self._stop_deployment(current, f"alarm(s) in ALARM during the deployment: {', '.join(firing)}",
                              bool(alarms.get("rollback")))
        return True

    def _stop_deployment(self, current: Deployment, why: str, rollback: bool) -> None:
        """Stop the new tasks; back to the last good task definition (rollback) or FAILED. Old tasks run on."""
        for task in [t for t in self.tasks if t.task_definition == current.task_definition]:
            self._stop(task, reason=f"Deployment stopped: {why}"[:255])
            self.tasks.remove(task)
        previous = self._last_completed(current.task_definition)
        if rollback and previous:
            ecs = client("ecs")
            updated = ecs.update_service(cluster=self.cluster, service=self.service, taskDefinition=previous)
            self._finish(current, ROLLED_BACK, f"{why}; rolled back to {previous}")
            # ECS keeps the rollback in its service deployments (ListServiceDeployments), which moto lacks: the
            # mark on the service is what tells the controller not to release this revision again.
            from controller import rollback_mark

            rollback_mark.mark_service(ecs, updated["service"]["serviceArn"], rollback_mark.RollbackMark(
                current.task_definition, rollback_mark.ENGINE, current.rollout_state_reason))
        else:
            self._finish(current, FAILED, why + ("; rollback is off" if not rollback else
                                                 "; no earlier task definition to roll back to"))
        log.warning("deployment %s of %s: %s", current.id, self.service, current.rollout_state_reason)

    def _last_completed(self, target: str) -> str | None:
        """Where a rollback goes: the last COMPLETED deployment's task definition, else the old tasks' one."""
        done = [d.task_definition for d in self.history if d.rollout_state == COMPLETED and d.task_definition != target]
        if done:
            return done[-1]
        old = [t.task_definition for t in self.tasks if t.task_definition != target]
        return old[0] if old else None

    def _begin(self, svc: dict[str, Any], task_def_arn: str, desired: int) -> Deployment:
        previous = self.deployment
        if previous is not None and previous.rollout_state == IN_PROGRESS:
            self._finish(previous, FAILED, f"superseded by a newer task definition ({task_def_arn})")
            self._record(previous)
        for task in [t for t in self.tasks if not t.healthy]:  # the superseded deployment's unproven task
            self._stop(task, reason="Deployment superseded")
            self.tasks.remove(task)
        config = svc.get("deploymentConfiguration") or {}
        breaker = config.get("deploymentCircuitBreaker") or {}
        alarms = config.get("alarms") or {}
        made = Deployment(
            id=f"local-{len(self.history) + 1}",
            task_definition=task_def_arn,
            previous_task_definition=self._last_completed(task_def_arn),
            desired_count=desired,
            circuit_breaker={"enable": bool(breaker.get("enable")), "rollback": bool(breaker.get("rollback"))},
            failure_threshold=deployments.failure_threshold(desired),
            alarms={"alarmNames": list(alarms.get("alarmNames", [])), "enable": bool(alarms.get("enable")),
                    "rollback": bool(alarms.get("rollback"))},
        )
        self.history.append(made)
        log.info("deployment %s of %s: %s", made.id, self.service, task_def_arn)
        return made

    def _finish(self, current: Deployment, state: str, reason: str) -> None:
        current.rollout_state, current.rollout_state_reason = state, reason
        current.finished_at = deployments.now_iso()

    def _record(self, current: Deployment) -> None:
        if current.rollout_state == COMPLETED:
            current.running_count = len(self.tasks)
            current.old_running_count = 0
        elif current.rollout_state != IN_PROGRESS:
            current.running_count = 0
            current.old_running_count = len([t for t in self.tasks if t.task_definition != current.task_definition])
        snapshot = repr(self.history)
        if snapshot != self._saved:  # written when something changed, not on every tick
            current.updated_at = deployments.now_iso()
            deployments.save(self.deployments_file, self.cluster, self.service, self.history)
            self._saved = repr(self.history)

    def _alive_or_reaped(self, task: Task, current: Deployment) -> bool:
        code = task.proc.poll()
        if code is not None:
            log.warning("task of %s exited with code %s; replacing it", self.service, code)
            self._record_stop(task, f"Essential container in task exited (exit code {code}): "
                                    f"{_last_line(task.log_path)}")
            if not task.healthy and task.task_definition == current.task_definition:
                self._failed(current)  # a new task that died before it was healthy
        return code is None

    def _record_stop(self, task: Task, reason: str) -> None:
        """ECS keeps stopped tasks with their stoppedReason (255 characters); so does moto, when told."""
        if task.task_arn is None:
            return
        try:
            client("ecs").stop_task(cluster=self.cluster, task=task.task_arn, reason=reason[:255])
        except Exception:  # bookkeeping only: never let it stop the runner from replacing the task
            log.warning("could not record the stop of %s", task.task_arn, exc_info=True)
        task.task_arn = None

    def _register(self, task_def_arn: str) -> str | None:
        try:
            svc = client("ecs").describe_services(cluster=self.cluster, services=[self.service])["services"][0]
            network = svc.get("networkConfiguration") or {}
            # One attempt: moto answers 500 to RunTask for a task definition without container-level memory (a
            # gap, docs/architecture.md), and eight retried 500s only delay the task this bookkeeping is for.
            made = client("ecs", max_attempts=1).run_task(
                cluster=self.cluster, taskDefinition=task_def_arn, launchType="FARGATE", count=1,
                group=f"service:{self.service}", startedBy=self.service[:36],
                **({"networkConfiguration": network} if network else {}),
            )["tasks"]
            return str(made[0]["taskArn"]) if made else None
        except Exception:
            log.warning("could not register a task of %s in ECS", self.service, exc_info=True)
            return None

    def processes(self) -> list[tuple[int, int, int]]:
        """(pid, cpu units, memory MiB) of each running task: the metrics publisher samples them."""
        return [(t.proc.pid, t.cpu_units, t.memory_mib) for t in self.tasks if t.proc.poll() is None]

    def _start(self, spec: dict[str, Any], task_def_arn: str) -> Task:
        container = spec["containerDefinitions"][0]
        command = container.get("dockerLabels", {}).get(LOCAL_COMMAND_LABEL, "python -m scraper")
        argv = shlex.split(command)
        if argv and argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        argv = [sys.executable, "-m", "localplane.orphan_guard", "--", *argv]  # stopped if `up` dies
        env = {**os.environ, **container_environment(container), **self.extra_env}
        # Each Fargate task has its own network interface; locally they share one, so each gets its own port.
        env["HUNTAZE_HEALTH_PORT"] = str(free_port())
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        self.started += 1
        log_path = self.log_dir / f"{self.service}-task-{self.started}.log"
        out = log_path.open("ab")
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT, start_new_session=True,
        )
        out.close()
        log.info("started task %d of %s (pid %d)", self.started, self.service, proc.pid)
        return Task(proc=proc, task_definition=task_def_arn, cpu_units=int(spec.get("cpu") or 1024),
                    memory_mib=int(spec.get("memory") or 2048), log_path=log_path,
                    task_arn=self._register(task_def_arn), env=env,
                    health=HealthCheck.of(container, self.scale()),
                    stop_timeout_s=float(container.get("stopTimeout") or ECS_DEFAULT_STOP_TIMEOUT_S))

    def _stop(self, task: Task, timeout_s: float | None = None,
              reason: str = "Task stopped by the service scheduler (scale-in or deployment)",
              signalled: bool = False) -> None:
        """SIGTERM (once: a second one tells the controller to exit at once, without releasing its lease), then
        SIGKILL after the container's stopTimeout (ECS honours it on every stop, scale-in and service shutdown
        included)."""
        self._record_stop(task, reason)
        if task.proc.poll() is None:
            if not signalled:
                task.proc.send_signal(signal.SIGTERM)
            try:
                task.proc.wait(timeout=task.stop_timeout_s if timeout_s is None else timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(task.proc.pid, signal.SIGKILL)
                task.proc.wait()

    def stop_all(self) -> None:
        for task in self.tasks:  # every task at once, as ECS stops a service's tasks; then each gets its stopTimeout
            if task.proc.poll() is None:
                task.proc.send_signal(signal.SIGTERM)
        for task in self.tasks:
            self._stop(task, signalled=True)
        self.tasks.clear()
