"""`python -m scraper` as a real process: health, SIGTERM mid-job, SIGKILL mid-send and restart."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from scraper_testkit import Plane, chromium_of, job, wait_for

from standin import Faults


def _health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_process_sigterm_mid_job_releases_and_exits_zero(
        plane: Plane, standin: Any, scraper_env: dict[str, str], worker_processes: Any,
        worker_tag: str) -> None:
    standin.set_faults(Faults(hang_creators=["slow"]))
    worker = worker_processes({**scraper_env, "HUNTAZE_ADAPTER": "browser", "HUNTAZE_ACTION_TIMEOUT_S": "30",
                               "HUNTAZE_JOB_DEADLINE_S": "60", "HUNTAZE_SHUTDOWN_BUDGET_S": "6"})
    ready = worker.wait_logged("worker ready")
    code, body = _health(ready["health_port"])
    assert (code, body["status"], body["problems"]) == (200, "ok", [])
    assert body["stats"]["browser_launches"] == 1 and body["stats"]["jobs_finished"] == 0
    plane.send(job("get_messages", "slow"))
    wait_for(lambda: standin.active_hangs >= 1, 60, "the job to be stuck on a page that never loads")
    assert chromium_of(worker_tag)

    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert worker.logged("stop requested; no more receives")
    # The cut job was given back at once (visibility 0), not left to its 30 s visibility, and nothing leaked.
    wait_for(lambda: plane.counts() == (1, 0), 10, "the released message to be visible")
    wait_for(lambda: not chromium_of(worker_tag), 15, "every Chromium of the worker to exit")
    assert plane.result_keys() == []


@pytest.mark.soak  # about 20 s: a send interrupted by SIGKILL, then a restart past the visibility
def test_process_sigkill_mid_send_then_restart_sends_exactly_once(
        plane: Plane, standin: Any, scraper_env: dict[str, str], worker_processes: Any,
        worker_tag: str) -> None:
    plane.sqs().set_queue_attributes(QueueUrl=plane.queue_url, Attributes={"VisibilityTimeout": "4"})
    standin.set_faults(Faults(latency_ms=400))
    env = {**scraper_env, "HUNTAZE_ADAPTER": "browser", "HUNTAZE_ACTION_TIMEOUT_S": "6",
           "HUNTAZE_JOB_DEADLINE_S": "6", "HUNTAZE_HEARTBEAT_INTERVAL_S": "1"}
    first = worker_processes(env)
    first.wait_logged("worker ready")
    plane.send(job("send_message", "killme", user="fan-7", text="exactly once please"))

    def thread_page_served() -> bool:
        routes = standin.state.stats()["by_route"]
        return any("/inbox/" in route and counts.get("200") for route, counts in routes.items())

    wait_for(thread_page_served, 60, "the send form to be served (the job is mid-send)")
    first.proc.kill()
    first.wait(10)
    wait_for(lambda: not chromium_of(worker_tag), 15, "the killed worker's Chromium to exit")

    second = worker_processes(env)
    second.wait_logged("worker ready")
    wait_for(lambda: plane.result_keys() != [] and plane.counts() == (0, 0), 90,
             "the job to end with a result after the restart")
    second.signal(signal.SIGTERM)
    assert second.wait(30) == 0

    sent = [m for m in standin.state.messages() if m.text == "exactly once please"]
    assert len(sent) == 1
    result = plane.read_json(plane.result_keys()[0])
    assert result["status"] == "success"
    assert plane.counts(plane.dlq_url) == (0, 0)
    wait_for(lambda: not chromium_of(worker_tag), 15, "every Chromium of both workers to exit")


def test_process_chromium_missing_health_reports_unhealthy(
        plane: Plane, standin: Any, scraper_env: dict[str, str], worker_processes: Any) -> None:
    worker = worker_processes({**scraper_env, "HUNTAZE_ADAPTER": "browser",
                               "HUNTAZE_CHROMIUM_PATH": "/nonexistent/chromium"})
    ready = worker.wait_logged("worker ready")
    status, body = _health(ready["health_port"])
    assert status == 503 and "browser cannot launch" in body["problems"][0]
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0


def test_process_chromium_environment_has_no_secrets(
        plane: Plane, standin: Any, scraper_env: dict[str, str], worker_processes: Any, worker_tag: str) -> None:
    worker = worker_processes({**scraper_env, "HUNTAZE_ADAPTER": "browser",
                               "HUNTAZE_API_KEY_SECRET_ID": "onlyfans/api-key"})
    worker.wait_logged("worker ready")
    wait_for(lambda: bool(chromium_of(worker_tag)), 30, "the worker's Chromium to run")
    environments = {pid: Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") for pid in chromium_of(worker_tag)}
    secrets = [scraper_env["REDIS_URL"].encode(), b"standin-password", b"standin-api-key"]
    for pid, environ in environments.items():
        names = {entry.split(b"=", 1)[0] for entry in environ if entry}
        leaked = {n for n in names if n == b"REDIS_URL" or n.startswith((b"AWS_", b"HUNTAZE_"))}
        assert not leaked, f"Chromium {pid} inherited {sorted(leaked)}"
        assert not any(secret in entry for entry in environ for secret in secrets), f"Chromium {pid} has a secret"
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
