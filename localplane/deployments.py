"""The local plane's record of each ECS service deployment: what `huntazectl rollout` reads locally.

Moto keeps one ``deployments`` entry per service, made at CreateService and never changed afterwards (same task
definition, ``rolloutState`` IN_PROGRESS forever, whatever UpdateService does; see docs/architecture.md), so the
service runner (`localplane.service_runner`) records the deployments it carries out itself, with ECS's fields
(snake_case): one JSON file per service, ``<run dir>/deployments/<cluster>--<service>.json``, next to the run's
other state (``state.json``, the task logs). Each deployment has an id, its task definition and the one it replaces, a
``rolloutState`` (IN_PROGRESS, COMPLETED, FAILED, ROLLED_BACK), the reason, the counts and the circuit breaker's
settings and failures so far, the alarms it watches, and its times. The file is replaced atomically, so a reader
never sees half of it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEPLOYMENTS_DIR = "deployments"
IN_PROGRESS, COMPLETED, FAILED, ROLLED_BACK = "IN_PROGRESS", "COMPLETED", "FAILED", "ROLLED_BACK"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Deployment:
    """One deployment, with the fields of DescribeServices' ``deployments`` entries (in snake_case)."""

    id: str
    task_definition: str
    previous_task_definition: str | None
    desired_count: int
    circuit_breaker: dict[str, bool]  # {"enable": ..., "rollback": ...} as the service's deploymentConfiguration
    failure_threshold: int
    alarms: dict[str, Any] = field(default_factory=dict)  # {"alarmNames": [...], "enable": ..., "rollback": ...}
    rollout_state: str = IN_PROGRESS
    rollout_state_reason: str = ""
    running_count: int = 0  # healthy tasks of this task definition
    old_running_count: int = 0  # tasks of older task definitions still running
    failed_tasks: int = 0  # new tasks that exited or failed their health check
    consecutive_failures: int = 0  # what the breaker counts; a healthy new task resets it
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    finished_at: str | None = None


def path_for(run_dir: Path, cluster: str, service: str) -> Path:
    return run_dir / DEPLOYMENTS_DIR / f"{cluster.rsplit('/', 1)[-1]}--{service}.json"


def load(path: Path) -> list[Deployment]:
    """The recorded deployments, oldest first; none when the file does not exist."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    return [Deployment(**d) for d in data.get("deployments", [])]


def save(path: Path, cluster: str, service: str, deployments: list[Deployment]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(f".tmp{os.getpid()}")
    body = {"cluster": cluster, "service": service, "deployments": [asdict(d) for d in deployments]}
    scratch.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    scratch.replace(path)


def failure_threshold(desired_count: int) -> int:
    """ECS's circuit breaker threshold: half the desired count, at least 3 and at most 200 failed tasks."""
    return max(3, min(200, -(-desired_count // 2)))
