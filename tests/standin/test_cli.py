"""`python -m standin` as a real process: prints its URL as one JSON line, serves, exits 0 on SIGTERM."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def _read_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            pytest.fail(f"python -m standin printed nothing within {timeout_s}s")
    return process.stdout.readline()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_process_prints_url_serves_and_exits_zero_on_signal(stop_signal: signal.Signals) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "standin", "--host", "127.0.0.1", "--port", "0", "--faults", '{"latency_ms": 1}']
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready = json.loads(_read_line(process, 15.0))
        url = ready["url"]
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/login", timeout=5).status_code == 200
        assert httpx.get(f"{url}/__admin/faults", timeout=5).json()["latency_ms"] == 1
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.stderr is not None
    process.stderr.close()
    assert process.stdout is not None
    process.stdout.close()
