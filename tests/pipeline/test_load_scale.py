"""Load end to end on the local stack (issue 13, item 2): a 500-job burst and a steady load at the limit.

Time-scaled by ``HUNTAZE_LOAD_TIME_SCALE`` (tests/helpers/pipeline.py). The scraper runs real Chromium against
the stand-in; the gate runs in the local Lambda runtime against a real redis-server; moto holds the queues.
Every scenario ends with `tests.helpers.invariants` (exactly one outcome per job, no double send, per-creator
order) and with no process left running.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers.invariants import max_in_any_window
from tests.helpers.pipeline import HEAVY_LANE, LoadProfile, Pipeline, running_pipeline, scaled

WORKFLOWS = "huntaze-hybrid-workflows.fifo"
ACTIONS = ("send_message", "scrape_profile", "get_messages", "download_media")
# The policy's max is 10 tasks; each local task is a Chromium with 3 pages, so this machine bounds it too.
MACHINE_MAX_TASKS = max(2, min(10, (os.cpu_count() or 2) + 1))


def burst_jobs(pipe: Pipeline, creators: int, per_creator: int) -> list[list[object]]:
    """Rounds: round k holds job k of every creator, so each creator's jobs are sent in order."""
    rounds = []
    for k in range(per_creator):
        round_jobs = []
        for c in range(creators):
            creator = f"creator_{c:02d}"
            action = ACTIONS[(k + c) % len(ACTIONS)]
            round_jobs.append(pipe.job(action, creator, text=f"{creator} burst {k:02d}"))
        rounds.append(round_jobs)
    return rounds  # type: ignore[return-value]


@pytest.mark.soak
@pytest.mark.xdist_group(HEAVY_LANE)
@pytest.mark.timeout(1500)
def test_burst_of_500_across_50_creators_scales_out_completes_every_job_and_scales_in(tmp_path: Path) -> None:
    # Per-creator limits with a higher global one (the design's way to grow): each creator's 10 jobs fit one of
    # its windows, so the FIFO queue fills faster than the scrapers drain it and the autoscaler must act.
    profile = LoadProfile(limits="global=100/60s,creator=10/60s", max_tasks=MACHINE_MAX_TASKS)
    peak = {"depth": 0, "desired": 1, "running": 0}
    phases: dict[str, float] = {}
    t0 = time.monotonic()
    with running_pipeline(tmp_path, profile) as pipe:
        phases["stack up"] = time.monotonic() - t0

        def watch() -> None:
            peak["depth"] = max(peak["depth"], pipe.queue_depth(WORKFLOWS)[0])
            peak["desired"] = max(peak["desired"], pipe.desired_count())
            peak["running"] = max(peak["running"], pipe.running_tasks())

        for round_jobs in burst_jobs(pipe, creators=50, per_creator=10):
            pipe.send(round_jobs)  # type: ignore[arg-type]
        t1 = time.monotonic()
        done = pipe.wait_until_finished(timeout_s=900, on_tick=watch)
        phases["every job ended"] = time.monotonic() - t1
        t2 = time.monotonic()
        deadline = time.monotonic() + scaled(profile.scale_in_cooldown_s) + 60
        while pipe.desired_count() > 1 and time.monotonic() < deadline:
            time.sleep(1)  # the autoscaler acts on its own tick, once the scale-in cooldown has passed
        final_desired = pipe.desired_count()
        phases["scaled in"] = time.monotonic() - t2
        problems = pipe.check_invariants()
        t3 = time.monotonic()
    phases["stack down"] = time.monotonic() - t3
    print(f"burst: peak FIFO depth {peak['depth']}, peak desired {peak['desired']}, peak running {peak['running']}; "
          + ", ".join(f"{name} {s:.0f}s" for name, s in phases.items()))
    assert done == 500, f"only {done} of 500 jobs ended"
    assert problems == []
    assert peak["depth"] > profile.target_depth, "the burst never raised the FIFO depth above the scaling target"
    assert 1 < peak["desired"] <= profile.max_tasks
    assert peak["running"] <= profile.max_tasks
    assert final_desired == 1, "the service did not scale back in after the cooldown"


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_steady_load_at_the_limit_never_exceeds_it_and_queue_wait_stays_bounded(tmp_path: Path) -> None:
    profile = LoadProfile(limits="global=10/60s")  # the seed's hard limit, time-scaled
    window = profile.window_s
    windows = 6
    per_window = 10
    t0 = time.monotonic()
    with running_pipeline(tmp_path, profile) as pipe:
        started = time.monotonic()
        stack_up = started - t0
        for i in range(windows * per_window):
            due = started + i * window / per_window
            time.sleep(max(0.0, due - time.monotonic()))  # the producer's pace is the load itself
            creator = f"creator_{i % 5}"
            pipe.send([pipe.job("send_message", creator, text=f"{creator} steady {i:03d}")])
        sent_in = time.monotonic() - started
        done = pipe.wait_until_finished(timeout_s=windows * window + 300)
        drained_in = time.monotonic() - started - sent_in
        problems = pipe.check_invariants()
        platform = pipe.stack.site.state.messages()
        sent_at = {job.text: datetime.fromisoformat(_timestamp(job.body)) for job in pipe.sent}
        t3 = time.monotonic()
    stack_down = time.monotonic() - t3
    arrivals = [m.received_at.timestamp() for m in platform]
    waits = sorted((m.received_at - sent_at[m.text]).total_seconds() for m in platform if m.text in sent_at)
    most = max_in_any_window(arrivals, window)
    print(f"steady: {len(arrivals)} sends, at most {most} in any {window:.1f}s window (limit {per_window}); "
          f"wait p50 {waits[len(waits) // 2]:.1f}s max {waits[-1]:.1f}s; stack up {stack_up:.0f}s, load sent "
          f"{sent_in:.0f}s, drained {drained_in:.0f}s after, stack down {stack_down:.0f}s")
    assert done == windows * per_window
    if most > per_window:
        problems.append(f"{most} sends reached the platform within one {window:.1f}s window (limit {per_window})")
    assert problems == []
    # Bounded: sending exactly at the limit, a job waits for its slot (at most a window behind the ones before
    # it, plus the gate's guard per window) and its scraping; it never waits for the whole backlog.
    bound = 2 * window + windows * max(1.0, window / 10) + 60
    assert waits[-1] <= bound, f"queue wait grew to {waits[-1]:.0f}s (bound {bound:.0f}s)"


def _timestamp(body: str) -> str:
    return str(json.loads(body)["timestamp"])
