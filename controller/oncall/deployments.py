"""The scraper service's recent ECS deployments for `huntazectl status`: what a failed or rolled-back deploy did.

Called by `controller.oncall.collect.collect_scraper` with the service DescribeServices already returned (no extra
AWS call). Where the record comes from, as for `huntazectl rollout` (controller/commands/rollout.py):
- locally, the local plane's record (`localplane.deployments`, ``<run dir>/deployments/<cluster>--<service>.json``;
  the run dir from ``status --run-dir``, else ``.huntaze/current``'s), because moto's DescribeServices keeps the one
  deployment it made at CreateService, unchanged and IN_PROGRESS, whatever happens afterwards;
- else (AWS), DescribeServices' ``deployments`` (the current one and the one it replaces).
Each deployment is returned in one shape (the local record's snake_case fields), oldest first, at most `KEEP`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

KEEP = 5
# ``.huntaze/current`` names the run dir of the stack that is up (localplane.stack.CURRENT_FILE, spelled out here:
# importing localplane.stack pulls in the stand-in server and costs a cold `status` its imports; a test keeps the
# two equal).
CURRENT_FILE = "current"


def _short(arn: str | None) -> str | None:
    return arn.rsplit("/", 1)[-1] if arn else arn


def _local_file(run_dir: Path | None, cluster: str, service: str) -> Path | None:
    from localplane import deployments

    if run_dir is None:
        from controller.commands.up import RUNS_DIR

        try:
            run_dir = Path((RUNS_DIR / CURRENT_FILE).read_text().strip())
        except OSError:
            return None
    path = deployments.path_for(run_dir, cluster, service)
    return path if path.exists() else None


def recent(service: dict[str, Any], cluster: str, run_dir: Path | None) -> tuple[list[dict[str, Any]], str]:
    """The service's last deployments (task definitions shortened to ``family:revision``) and where they come
    from."""
    path = _local_file(run_dir, cluster, service["serviceName"])
    if path is not None:
        from dataclasses import asdict

        from localplane import deployments

        records = [asdict(d) for d in deployments.load(path)]
        source = f"local plane record {path}"
    else:
        records = [{"id": d.get("id"), "task_definition": d.get("taskDefinition"),
                    "rollout_state": d.get("rolloutState") or d.get("status"),
                    "rollout_state_reason": d.get("rolloutStateReason", ""), "failed_tasks": d.get("failedTasks"),
                    "created_at": str(d.get("createdAt")), "finished_at": str(d.get("updatedAt"))}
                   for d in sorted(service.get("deployments", []), key=lambda d: str(d.get("createdAt")))]
        source = "ECS DescribeServices deployments"
    keep = ("id", "task_definition", "previous_task_definition", "rollout_state", "rollout_state_reason",
            "failed_tasks", "consecutive_failures", "failure_threshold", "created_at", "finished_at")
    out = [{k: r.get(k) for k in keep} for r in records[-KEEP:]]
    for r in out:
        r["task_definition"] = _short(r["task_definition"])
        r["previous_task_definition"] = _short(r["previous_task_definition"])
    return out, source
