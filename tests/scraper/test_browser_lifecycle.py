"""Browser lifecycle: recycle after N jobs, recycle on cgroup memory, relaunch after the browser is killed,
session reuse (one login per creator), no Chromium left behind."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from scraper_testkit import Plane, chromium_of, job, run_worker, wait_for

from scraper.browser import BrowserManager
from standin import Faults


def _cgroup_memory(directory: Path, used: int, limit: int) -> None:
    """A cgroup v2 memory view (memory.current / memory.max) for HUNTAZE_CGROUP_DIR."""
    (directory / "memory.current").write_text(f"{used}\n")
    (directory / "memory.max").write_text(f"{limit}\n")


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
    _cgroup_memory(tmp_path, used=900, limit=1000)
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


def test_browser_memory_high_after_recycle_backs_off_and_warns_on_health(
        plane: Plane, standin: Any, make_settings: Any, tmp_path: Path) -> None:
    _cgroup_memory(tmp_path, used=950, limit=1000)
    for n in range(5):
        plane.send(job("get_messages", "memstuck", n=n))
    health: dict[str, list[str]] = {}

    def done(worker: Any) -> bool:
        if len(plane.result_keys()) == 5 and plane.counts() == (0, 0):
            health.update(warnings=worker.warnings(), problems=worker.problems())  # while it still runs
            return True
        return False

    worker = run_worker(make_settings(adapter="browser", cgroup_dir=str(tmp_path), memory_threshold_ratio=0.85),
                        until=done, timeout_s=90)
    manager = worker.adapter.manager  # type: ignore[attr-defined]
    # One recycle; memory stayed high after it, so no relaunch on every job: a warning instead.
    assert manager.recycles == ["cgroup memory at 95%"] and manager.launches == 2
    (warning,) = health["warnings"]
    assert "still at 95% after a browser recycle" in warning
    assert health["problems"] == []  # a warning, not a reason to replace the task


async def _lease_pool_scenario(settings: Any, site_url: str) -> dict[str, Any]:
    manager = BrowserManager(settings)
    await manager.start()
    seen: dict[str, Any] = {}
    try:
        async with manager.lease("ann", dict) as lease:
            await lease.page.goto(f"{site_url}/login")
            await lease.context.add_cookies([{"name": "marker", "value": "ann", "url": site_url}])
            seen["ann_context"] = lease.context
            lease.keep = True
        async with manager.lease("bob", dict) as lease:
            seen["bob_cookies"] = await lease.context.cookies()
            seen["bob_context"] = lease.context
            lease.keep = True
        async with manager.lease("ann", dict) as lease:
            seen["ann_again"] = lease.context
            lease.keep = False  # this attempt failed: the context must not be reused
        async with manager.lease("ann", dict) as lease:
            seen["ann_after_failure"] = lease.context
            seen["ann_after_failure_cookies"] = await lease.context.cookies()
        seen["reused"] = manager.reused
    finally:
        await manager.aclose()
    return seen


def test_browser_context_pool_reuses_per_creator_isolated_fresh_after_failure(
        standin: Any, make_settings: Any) -> None:
    settings = make_settings(adapter="browser", context_pool_size=2)
    seen = asyncio.run(_lease_pool_scenario(settings, standin.url))
    assert seen["ann_again"] is seen["ann_context"]  # consecutive jobs of a creator share the context
    assert seen["bob_context"] is not seen["ann_context"] and seen["bob_cookies"] == []  # never another's
    assert seen["ann_after_failure"] is not seen["ann_context"]  # fresh after a failure
    assert seen["ann_after_failure_cookies"] == []
    assert seen["reused"] == 1


def test_browser_creator_jobs_reuse_one_context_and_log_in_once(
        plane: Plane, standin: Any, make_settings: Any, worker_tag: str) -> None:
    for n in range(4):
        plane.send(job("get_messages", "steady", n=n))
    worker = run_worker(make_settings(adapter="browser"),
                        until=lambda w: len(plane.result_keys()) == 4 and plane.counts() == (0, 0), timeout_s=90)
    assert worker.adapter.manager.reused == 3  # type: ignore[attr-defined]
    assert _login_posts(standin) == 1
    wait_for(lambda: not chromium_of(worker_tag), 15, "every Chromium of the worker to exit")
