"""Gate releases through CodeDeploy under steady load on the whole local stack (issue 14: a good and a bad canary).

The stack is applied from manifests/ with their queue settings (ingress visibility 180 s, maxReceiveCount 20); the
gate names its deployment group (``deployment.deploymentGroupRef``), so a release is a CodeDeploy deployment that
the local plane's CodeDeploy engine runs. Only time is scaled: rate windows and alarm periods by
`HUNTAZE_LOAD_TIME_SCALE` (6: 10 jobs per 10 s), and the deployment's schedule by the engine's own scale,
``HUNTAZE_DEPLOY_TIME_SCALE`` (the good release: 15, so Canary10Percent5Minutes bakes 20 s; the bad one: 4, 75 s,
which it never reaches, since its alarm stops it). A release is a `huntazectl apply` whose gate code differs, by
Canary10Percent5Minutes (`tests.helpers.gate_release`).

- Good release: CodeDeploy's deployment moves the alias to 10 % of the new version (both versions invoked) for
  the canary's time-scaled bake, then 100 %, and Succeeds; over both versions' admissions (the shared limit log
  in Redis) and at the platform, never more than N in any window; every job ends once, none dead-lettered, none
  sent twice.
- Bad release (a version that fails every batch): the manifests' canary-sized error alarm (gate_release_errors,
  watched by the gate's deployment group) trips during the canary; the engine stops the deployment (ALARM_ACTIVE) and
  returns the alias to the old version; the batches the bad version failed come back after the queue's visibility
  timeout and the old version forwards them: every job ends once, none dead-lettered, none sent twice (per-creator
  order cannot hold for the jobs of a failed batch: they return behind their creators' later jobs; the test reports
  it).

Both together took 404 s and 360 s (two runs, load averages 8-30, 2 cores); the bad release's 180 s of visibility
is most of it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from localplane.codedeploy_engine import DEPLOY_TIME_SCALE_ENV
from tests.helpers import invariants
from tests.helpers.gate_release import (
    FAILS_EVERY_BATCH,
    HARMLESS,
    RELEASE_ERROR_ALARM,
    AdmissionLog,
    SteadyLoad,
    alias,
    deployment,
    gate_variant,
    release,
    stop_stack_controller,
)
from tests.helpers.invariants import max_in_any_window
from tests.helpers.pipeline import HEAVY_LANE, LoadProfile, Pipeline, running_pipeline

CANARY = "Canary10Percent5Minutes"
GOOD_DEPLOY_SCALE = 15.0
GOOD_BAKE_S = 5 * 60 / GOOD_DEPLOY_SCALE
BAD_DEPLOY_SCALE = 2.0  # the bad canary bakes 150 s: room for its alarm on a busy machine; it stops at the alarm
BAD_BAKE_S = 5 * 60 / BAD_DEPLOY_SCALE
INGRESS_VISIBILITY_S = 180  # manifests/queues.yaml: a failed batch returns after this
LOAD_PER_WINDOW = 5  # jobs per (scaled) window: half the limit, so one scraper task keeps up on a busy machine
BAD_LOAD_PER_WINDOW = 8
DRAIN_S = 300  # after the load stops, until every job has an outcome (a bound, not a wait)


def _follow_shift(timeout_s: float) -> list[tuple[float, dict[str, float], dict[str, Any]]]:
    """(seconds since the call, weights, record) every half second until the shift ends."""
    started = time.monotonic()
    seen: list[tuple[float, dict[str, float], dict[str, Any]]] = []
    while time.monotonic() - started < timeout_s:
        weights, record = alias()
        seen.append((time.monotonic() - started, weights, record))
        if record.get("state") in ("COMPLETED", "ROLLED_BACK"):
            break
        time.sleep(0.5)
    return seen


def _outcome_problems(pipe: Pipeline) -> tuple[list[str], int]:
    outcomes = invariants.Outcomes.read()
    problems = invariants.check(pipe.sent, outcomes, pipe.stack.site.state.messages())
    return problems, len(outcomes.dead_letters)


@pytest.mark.soak
@pytest.mark.xdist_group(HEAVY_LANE)
@pytest.mark.timeout(900)
def test_good_gate_release_shifts_10_then_100_percent_within_the_limit_losing_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(DEPLOY_TIME_SCALE_ENV, str(GOOD_DEPLOY_SCALE))
    profile = LoadProfile()  # global=10/60s, time-scaled
    window = profile.window_s
    with running_pipeline(tmp_path, profile, before_plane=stop_stack_controller) as pipe:
        admissions = AdmissionLog(pipe.stack.redis.url)
        admissions.start()
        load = SteadyLoad(pipe, interval_s=window / LOAD_PER_WINDOW, label="good-release")
        load.start()
        try:
            time.sleep(window)  # version 1 alone first
            release(pipe, tmp_path, gate_variant(tmp_path, "good", HARMLESS), CANARY)
            seen = _follow_shift(timeout_s=GOOD_BAKE_S + 60)
            time.sleep(window)  # the new version alone
        finally:
            load.stop()
        done = pipe.wait_until_finished(timeout_s=DRAIN_S)
        shifted_by = deployment(seen[-1][2]["deployment"]) if seen[-1][2].get("deployment") else {}
        admissions.stop()
        by_version = dict(next(iter(pipe.plane.mappings.values())).by_version)
        problems, dead = _outcome_problems(pipe)
        arrivals = [m.received_at.timestamp() for m in pipe.stack.site.state.messages()]
    steps = [w for _, w, _ in seen]
    final = seen[-1][2]
    print(f"good release: weights seen {sorted({tuple(sorted(w.items())) for w in steps})}, completed "
          f"{seen[-1][0]:.0f}s after apply; invocations by version {by_version}; {len(pipe.sent)} jobs")
    assert shifted_by.get("status") == "Succeeded", f"the release was not a CodeDeploy deployment: {final}"
    assert shifted_by["deploymentConfigName"] == f"CodeDeployDefault.Lambda{CANARY}", shifted_by
    assert {"1": 0.9, "2": 0.1} in steps, steps
    assert final["state"] == "COMPLETED" and seen[-1][1] == {"2": 1.0}, final
    assert all(w in ({"1": 1.0}, {"1": 0.9, "2": 0.1}, {"2": 1.0}) for w in steps), "a step not of the canary"
    canary_s = [t for t, w, _ in seen if w == {"1": 0.9, "2": 0.1}]
    # Observed every 0.5 s, the engine ticking every second: the canary lasts its bake to within a few ticks.
    assert GOOD_BAKE_S - 2 <= canary_s[-1] - canary_s[0] <= GOOD_BAKE_S + 15, (
        f"the canary lasted {canary_s[-1] - canary_s[0]:.1f}s, not its time-scaled 5 minutes ({GOOD_BAKE_S:.0f}s)")
    assert by_version.get("1", 0) > 0 and by_version.get("2", 0) > 0, by_version
    assert done == len(pipe.sent) and problems == [] and dead == 0, problems
    limit = 10
    assert max_in_any_window(admissions.times(), window) <= limit
    assert max_in_any_window(arrivals, window) <= limit
    assert len(admissions.admitted) >= len(pipe.sent) // 2, "the admission log was not sampled"


@pytest.mark.soak
@pytest.mark.xdist_group(HEAVY_LANE)
@pytest.mark.timeout(900)
def test_bad_gate_release_trips_its_alarm_in_the_canary_rolls_back_and_old_version_ends_its_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(DEPLOY_TIME_SCALE_ENV, str(BAD_DEPLOY_SCALE))
    profile = LoadProfile()
    window = profile.window_s
    with running_pipeline(tmp_path, profile, before_plane=stop_stack_controller) as pipe:
        alarm = RELEASE_ERROR_ALARM  # the manifests' own, watched by the deployment group
        # 80 % of the limit: a 10 % canary must see some batches within its bake (with a few jobs a minute
        # it may see none and complete: a canary only judges the traffic it gets).
        load = SteadyLoad(pipe, interval_s=window / BAD_LOAD_PER_WINDOW, label="bad-release")
        load.start()
        try:
            time.sleep(window)
            released = time.monotonic()
            release(pipe, tmp_path, gate_variant(tmp_path, "bad", FAILS_EVERY_BATCH), CANARY)
            seen = _follow_shift(timeout_s=BAD_BAKE_S + 60)
            rollback_s = time.monotonic() - released
            time.sleep(window)  # the old version alone again
        finally:
            load.stop()
        runner = next(iter(pipe.plane.mappings.values()))
        failed_batches = runner.errors
        done = pipe.wait_until_finished(timeout_s=INGRESS_VISIBILITY_S + DRAIN_S)
        by_version = dict(runner.by_version)
        problems, dead = _outcome_problems(pipe)
        stopped = deployment(seen[-1][2]["deployment"]) if seen[-1][2].get("deployment") else {}
    # A batch the bad version failed returns after the visibility timeout, behind its creators' later jobs,
    # which the old version forwarded meanwhile: per-creator order cannot hold for those jobs (Lambda on an SQS
    # standard queue). Reported, not asserted; every other invariant is.
    out_of_order = [p for p in problems if "out of order" in p]
    problems = [p for p in problems if p not in out_of_order]
    final = seen[-1][2]
    canary_s = [t for t, w, _ in seen if w == {"1": 0.9, "2": 0.1}]
    into_canary_s = seen[-1][0] - (canary_s or [seen[-1][0]])[0]
    print(f"bad release: rolled back {rollback_s:.0f}s after apply, {into_canary_s:.0f}s into its canary "
          f"({final.get('reason')}); failed batches {failed_batches}; invocations by version {by_version}; "
          f"{len(pipe.sent)} jobs; creators out of order "
          f"{len(out_of_order)}")
    assert stopped.get("status") == "Stopped", f"the release was not a CodeDeploy deployment stopped: {final}"
    assert stopped["errorInformation"] == {"code": "ALARM_ACTIVE", "message": f"alarm {alarm} in ALARM"}, stopped
    assert stopped["rollbackInfo"].get("rollbackMessage"), "the deployment stopped without rolling back"
    assert final["state"] == "ROLLED_BACK", final
    assert seen[-1][1] == {"1": 1.0}
    assert all(w.get("2", 0.0) <= 0.1 for _, w, _ in seen), "the bad version took more than the canary's 10 %"
    assert canary_s and into_canary_s < BAD_BAKE_S, "not rolled back during the canary's bake"
    assert failed_batches >= 1 and by_version.get("2", 0) >= 1, "the bad version touched no job"
    assert done == len(pipe.sent) and problems == [] and dead == 0, problems
