"""`huntazectl up --demo 1` end to end: the whole local stack, one demo job, and the console edit the demo makes
corrected by the controller running as a local ECS service, at its production interval (60 s): soak."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.operator.conftest import REPO


@pytest.mark.soak
def test_up_demo_console_edit_corrected_by_the_controller_service(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "REDIS_URL", "HUNTAZE_"))}
    env["HUNTAZE_RUNS_DIR"] = str(tmp_path / "runs")  # not the repository's .huntaze: no clash with a stack up
    done = subprocess.run([sys.executable, "-m", "controller.cli", "up", "--demo", "1", "--run-dir",
                           str(tmp_path / "run")], cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "console edit (boto3, as in the AWS console): Queue huntaze-rate-limiter-dlq VisibilityTimeout" in out
    corrected = next(line for line in out.splitlines() if line.startswith("the controller corrected"))
    assert "journal: Queue/huntaze-rate-limiter-dlq updated, verdicts drift, corrected" in corrected, corrected
    assert "nothing left running" in out
