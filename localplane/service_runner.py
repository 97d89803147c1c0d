"""Keeps an ECS service's desired count of task processes running locally.

Moto stores ECS services but runs no tasks, so `localplane.plane` gives each service a `ServiceRunner`. A task is
a child process running the container's command from the checkout (the task definition's docker label
``huntaze.io/local-command``, default ``python -m scraper``) with the container's environment and its secrets
resolved from Secrets Manager, as the ECS agent would inject them. Scale-in stops tasks with SIGTERM and the
container's stopTimeout (ECS's 30 s default), then SIGKILL, exactly like ECS; crashed tasks are replaced.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.aws import client
from localplane.services import free_port

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_COMMAND_LABEL = "huntaze.io/local-command"
ECS_DEFAULT_STOP_TIMEOUT_S = 30


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

    def sync(self) -> None:
        """Match running processes to the service's desiredCount and current task definition."""
        ecs = client("ecs")
        described = ecs.describe_services(cluster=self.cluster, services=[self.service])["services"]
        if not described or described[0].get("status") != "ACTIVE":
            self.stop_all()
            return
        svc = described[0]
        task_def_arn = svc["taskDefinition"]
        self.tasks = [t for t in self.tasks if self._alive_or_reaped(t)]
        for task in [t for t in self.tasks if t.task_definition != task_def_arn]:
            self._stop(task)  # rolling update: replace tasks of an older revision
            self.tasks.remove(task)
        desired = int(svc.get("desiredCount", 0))
        while len(self.tasks) > desired:
            self._stop(self.tasks.pop())
        if len(self.tasks) < desired:
            spec = ecs.describe_task_definition(taskDefinition=task_def_arn)["taskDefinition"]
            while len(self.tasks) < desired:
                self.tasks.append(self._start(spec, task_def_arn))

    def _alive_or_reaped(self, task: Task) -> bool:
        code = task.proc.poll()
        if code is not None:
            log.warning("task of %s exited with code %s; replacing it", self.service, code)
            self._record_stop(task, f"Essential container in task exited (exit code {code}): "
                                    f"{_last_line(task.log_path)}")
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
            made = client("ecs").run_task(
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
                    task_arn=self._register(task_def_arn))

    def _stop(self, task: Task, timeout_s: float = ECS_DEFAULT_STOP_TIMEOUT_S) -> None:
        self._record_stop(task, "Task stopped by the service scheduler (scale-in or deployment)")
        if task.proc.poll() is None:
            task.proc.send_signal(signal.SIGTERM)
            try:
                task.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(task.proc.pid, signal.SIGKILL)
                task.proc.wait()

    def stop_all(self) -> None:
        for task in self.tasks:
            if task.proc.poll() is None:
                task.proc.send_signal(signal.SIGTERM)
        for task in self.tasks:
            self._stop(task)
        self.tasks.clear()
