"""`huntazectl up` runs the controller as one more ECS service of the local plane: the service runner starts the
task definition's local command (ecs-specs/controller-task.yaml) as a process, which takes the lease and
reconciles the full stack, and stops it with SIGTERM as ECS would (the lease is released)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.journal import read_file_records
from localplane.service_runner import ServiceRunner
from tests.operator.conftest import REPO, wait_until

FULL_STACK = ["-f", str(REPO / "manifests"), "-f", str(REPO / "ecs-specs"), "--env", "local",
              "--var", "REDIS_URL=redis://127.0.0.1:9/0", "--var", "SITE_URL=http://127.0.0.1:9/site"]


def _count_resources() -> int:
    from controller.specs import LoadOptions, load

    variables = {"ENV": "local", "AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID": "123456789012",
                 "REDIS_URL": "redis://127.0.0.1:9/0", "SITE_URL": "http://127.0.0.1:9/site"}
    return len(load(LoadOptions([str(REPO / "manifests"), str(REPO / "ecs-specs")], "local", variables)).manifests)


@pytest.mark.soak
def test_local_plane_runs_the_controller_service_which_reconciles_and_stops_cleanly(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controller.cli import main

    monkeypatch.setenv("AWS_ACCOUNT_ID", "123456789012")
    assert main(["apply", *FULL_STACK]) == 0
    journal = tmp_path / "journal.jsonl"
    env = {"AWS_ENDPOINT_URL": aws, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "REDIS_URL": "redis://127.0.0.1:9/0",
           "HUNTAZE_JOURNAL_FILE": str(journal)}
    runner = ServiceRunner("huntaze", "huntaze-controller", env, tmp_path)
    try:
        runner.sync()
        assert len(runner.tasks) == 1
        cycle = wait_until(lambda: [r for r in read_file_records(journal) if r.type == "cycle"]
                           if journal.exists() else [], 240, "the controller task's first cycle")[0]
        assert cycle.counts["written"] == 0 and cycle.counts["errors"] == 0, cycle.counts
        assert cycle.counts["resources"] == _count_resources()
    finally:
        runner.stop_all()
    assert [r.action for r in read_file_records(journal) if r.type == "lease"][-1] == "released"
