"""`huntazectl up --detach` → `env` → `send` → `results` → `down`, as a user runs them, as real processes.

The run folder goes to a temp dir (``HUNTAZE_RUNS_DIR``), so a stack a developer has up is never touched.
After `down`, every process the stack recorded (moto, redis-server, the gate runtime, scraper tasks, Chromium)
must be gone.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localplane.stack import RunState, current_run_dir, process_start_time

REPO = Path(__file__).resolve().parents[2]


def ctl(*argv: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", *argv], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.mark.soak
@pytest.mark.timeout(600)
def test_up_detach_env_send_results_down_leaves_nothing_running(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "REDIS_URL", "HUNTAZE_"))}
    env["HUNTAZE_RUNS_DIR"] = str(tmp_path)
    up = ctl("up", "--detach", env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "export AWS_ENDPOINT_URL=" in up.stdout and "huntazectl send" in up.stdout
    run_dir = current_run_dir(tmp_path)
    assert run_dir is not None
    try:
        printed = ctl("env", env=env)
        assert printed.returncode == 0, printed.stderr
        shell = dict(env)
        for line in printed.stdout.splitlines():
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                shell[name] = shlex.split(value)[0]
        assert shell["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        sent = ctl("send", "--action", "send_message", "--creator", "creator_life", "--text", "hello",
                   "--count", "3", "-o", "json", env=shell)
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["sent"] == 3
        records: list[dict[str, object]] = []
        deadline = time.monotonic() + 180
        while len(records) < 3 and time.monotonic() < deadline:
            time.sleep(1)  # results land as the scraper finishes; one listing a second
            listed = ctl("results", "--creator", "creator_life", "-o", "json", env=shell)
            assert listed.returncode == 0, listed.stderr
            records = json.loads(listed.stdout)
        assert sorted(r["status"] for r in records) == ["success"] * 3
    finally:
        state = RunState.load(run_dir)
        down = ctl("down", env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert state is not None and state.processes
    survivors = {pid: info["cmd"] for pid, info in state.processes.items()
                 if process_start_time(int(pid)) == info["started"]}
    assert survivors == {}
    assert process_start_time(state.pid) is None
    assert current_run_dir(tmp_path) is None
    assert ctl("env", env=env).returncode == 2
