"""Browser lifecycle: recycle after N jobs, recycle on cgroup memory, relaunch after the browser is killed,
session reuse (one login per creator), no Chromium left behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from scraper_testkit import Plane, chromium_of, job, run_worker, wait_for

from standin import Faults


def _login_posts(standin: Any) -> int:
    return int(standin.state.stats()["by_route"].get("POST /login", {}).get("303", 0))


def test_browser_recycles_after_n_jobs_and_reuses_creator_session(
        plane: Plane, standin: Any, make_settings: Any, worker_tag: str) -> None:
    for n in range(5):
        plane.send(job("get_messages", "recyc", n=n))
    worker = run_worker(make_settings(adapter="browser", browser_recycle_jobs=2),
                        until=lambda w: len(plane.result_keys()) == 5 and plane.counts() == (0, 0), timeout_s=90)
    manager = worker.adapter.manager  # type: ignore[attr-defined]
    assert manager.launches == 3 and manager.recycles == ["2 jobs since launch"] * 2
    assert _login_posts(standin) == 1  # the stored session state survives contexts and browser recycles
    wait_for(lambda: not chromium_of(worker_tag), 15, "every Chromium of the worker to exit")


def test_browser_recycles_when_cgroup_memory_passes_threshold(
        plane: Plane, standin: Any, make_settings: Any, tmp_path: Path) -> None:
    (tmp_path / "memory.current").write_text("900\n")
    (tmp_path / "memory.max").write_text("1000\n")
    for n in range(2):
        plane.send(job("get_messages", "memhog", n=n))
    worker = run_worker(make_settings(adapter="browser", cgroup_dir=str(tmp_path), memory_threshold_ratio=0.85),
                        until=lambda w: len(plane.result_keys()) == 2 and plane.counts() == (0, 0), timeout_s=60)
    manager = worker.adapter.manager  # type: ignore[attr-defined]
    assert manager.recycles == ["cgroup memory at 90%"] and manager.launches == 2


def test_browser_killed_mid_job_relaunches_and_job_succeeds(
        plane: Plane, standin: Any, make_settings: Any, worker_tag: str) -> None:
    standin.set_faults(Faults(latency_ms=800))
    plane.send(job("scrape_profile", "victim"))
    killed: list[int] = []

    def kill_browser_mid_job(worker: Any) -> None:
        manager = worker.adapter.manager
        if killed or manager._active == 0:
            return
        pids = chromium_of(worker_tag)
        parents = {pid: int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) for pid in pids}
        roots = [pid for pid, parent in parents.items() if parent not in pids]
        for pid in roots:
            os.kill(pid, signal.SIGKILL)
        killed.extend(roots)

    worker = run_worker(make_settings(adapter="browser"), on_tick=kill_browser_mid_job,
                        until=lambda w: plane.result_keys() != [] and plane.counts() == (0, 0), timeout_s=60)
    assert killed
    assert worker.adapter.manager.launches == 2  # type: ignore[attr-defined]
    assert plane.read_json(plane.result_keys()[0])["status"] == "success"
    wait_for(lambda: not chromium_of(worker_tag), 15, "every Chromium of the worker to exit")
