"""Scraper releases under steady load on the whole local stack: what a bad and a good release cost (issue 14).

    .venv/bin/python -m bench.rollout.service [--jobs-per-phase 12] [--rate 0.5]

One run, one stack (moto, Redis, Chromium, the stand-in, the local plane; `tests.helpers.pipeline`), jobs sent at
a steady rate throughout. Each release is made the way an operator makes it: `huntazectl apply --wait` with an
overlay that changes the scraper's TaskDefinition (a new revision, rolled out by the local plane's ECS rolling
update with the circuit breaker and rollback of ecs-specs/onlyfans-scraper-service.yaml). The local controller
service is scaled to 0 first: it reconciles the specs without the bench's overlay and would revert the release.

Printed, per release (bad: tasks that stay alive and never pass their health check; good: the normal worker):
- jobs sent while it ran, and of those lost (no result, no dead letter), dead-lettered, duplicated (a
  send_message that reached the stand-in twice): target 0 / 0 / 0;
- seconds from the apply to the end of the rollout (bad: to the rollback; `apply --wait` returning);
- AWS API calls of the releasing apply, minus a no-op apply's calls: the extra calls a deploy costs.
Time-scaled as the soak tests (HUNTAZE_LOAD_TIME_SCALE, default 6): health check interval 30 s -> 5 s, start
period 60 s -> 10 s; 3 failed tasks trip the breaker.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.aws import add_event_hook, client
from controller.cli import main as huntazectl
from localplane.service_runner import LOCAL_COMMAND_LABEL
from localplane.stack import apply_argv
from tests.helpers import invariants
from tests.helpers.pipeline import SCRAPER_SERVICE, Pipeline, running_pipeline

REPO = Path(__file__).resolve().parents[2]
NEVER_HEALTHY = 'python -c "import time; time.sleep(3600)"'


@dataclass
class Phase:
    name: str
    sent: list[invariants.SentJob]
    exit_code: int = 0
    seconds: float = 0.0
    calls: int = 0


class CallCount:
    """Every AWS call made in this process (botocore ``before-call``), for the apply's own count."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, **_: Any) -> None:
        with self._lock:
            self.count += 1


def release_overlay(path: Path, marker: str, command: str | None) -> Path:
    container: dict[str, Any] = {"name": "playwright-scraper", "environment": [{"name": "RELEASE", "value": marker}]}
    if command is not None:
        container["dockerLabels"] = {LOCAL_COMMAND_LABEL: command}
    doc = {"apiVersion": "huntaze.io/v1", "kind": "TaskDefinition", "metadata": {"name": "huntaze-onlyfans-scraper"},
           "spec": {"containerDefinitions": [container]}}
    path.write_text(json.dumps(doc) + "\n")
    return path


def apply(pipe: Pipeline, overlays: tuple[Path, ...], counter: CallCount, *extra: str) -> tuple[int, float, int]:
    """`huntazectl apply` in-process: (exit code, seconds, AWS calls); its output kept quiet."""
    before, started = counter.count, time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = huntazectl([*apply_argv(REPO, pipe.stack, overlays), *extra])
    if "--wait" in extra:
        print("    " + "\n    ".join(line for line in out.getvalue().splitlines() if "rollout" in line))
    return code, time.monotonic() - started, counter.count - before


class SteadyLoad(threading.Thread):
    """One send_message job every ``1/rate`` seconds, creators in turn, tagged with the current phase."""

    def __init__(self, pipe: Pipeline, rate: float) -> None:
        super().__init__(daemon=True)
        self.pipe, self.period, self.phase = pipe, 1.0 / rate, "warm-up"
        self.stop = threading.Event()
        self.by_phase: dict[str, list[invariants.SentJob]] = {}

    def run(self) -> None:
        i = 0
        while not self.stop.wait(self.period):
            phase = self.phase
            self.pipe.send([self.pipe.job("send_message", f"creator_{i % 3}", text=f"{phase} {i:04d}")])
            self.by_phase.setdefault(phase, []).append(self.pipe.sent[-1])
            i += 1


def figures(sent: list[invariants.SentJob], outcomes: invariants.Outcomes, platform: list[Any]) -> tuple[int, ...]:
    arrived = Counter(str(m.text) for m in platform)
    lost = dead = duplicated = 0
    for job in sent:
        results = outcomes.results.get(job.message_id, [])
        letters = [d for d in outcomes.dead_letters if d.correlation_id() == job.correlation_id]
        lost += not results and not letters
        dead += bool(letters)
        duplicated += arrived[str(job.text)] > 1
    return lost, dead, duplicated


def run(jobs_per_phase: int, rate: float) -> None:
    counter = CallCount()
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp, running_pipeline(
        Path(tmp), before_plane=lambda: client("ecs").update_service(
            cluster="huntaze", service="huntaze-controller", desiredCount=0)) as pipe:
        add_event_hook("before-call.*.*", counter)  # after the stack set the session up (it clears the clients)
        scraper = next(s for s in pipe.plane.services.values() if s.service == SCRAPER_SERVICE)
        deadline = time.monotonic() + 180
        while not any(t.healthy and t.proc.poll() is None for t in scraper.tasks):
            if time.monotonic() > deadline:
                raise SystemExit("the scraper's first task never became healthy")
            time.sleep(1)
        # The scaled limits running_pipeline applied, and the controller service kept at 0 (every apply of the
        # base specs would start it again, and it would reconcile the release away and hold the stack lock).
        load_overlay = Path(tmp) / "load-overlay.yaml"
        (Path(tmp) / "no-controller.yaml").write_text(json.dumps({
            "apiVersion": "huntaze.io/v1", "kind": "Service", "metadata": {"name": "huntaze-controller"},
            "spec": {"desiredCount": 0}}) + "\n")
        base = (load_overlay, Path(tmp) / "no-controller.yaml")
        _, _, noop_calls = apply(pipe, base, counter)
        load = SteadyLoad(pipe, rate)
        load.start()
        time.sleep(jobs_per_phase / rate / 2)
        phases = []
        for name, command in (("bad", NEVER_HEALTHY), ("good", None)):
            load.phase = name
            overlay = release_overlay(Path(tmp) / f"{name}.yaml", name, command)
            print(f"{name} release: apply --wait ...", flush=True)
            code, seconds, calls = apply(pipe, (*base, overlay), counter, "--wait", "--wait-timeout", "10m",
                                         "--run-dir", str(pipe.stack.run_dir))
            remaining = jobs_per_phase / rate - seconds
            if remaining > 0:
                time.sleep(remaining)  # at least jobs_per_phase jobs sent while the release is live
            phases.append(Phase(name, [], code, seconds, calls))
        load.stop.set()
        load.join()
        pipe.wait_until_finished(timeout_s=600)
        outcomes = invariants.Outcomes.read()
        platform = list(pipe.stack.site.state.messages())
        problems = invariants.check(pipe.sent, outcomes, platform)
    print(f"\nscraper releases under steady load ({rate:g} job/s, send_message; local stack, time scale 6)")
    print(f"{'release':<8} {'apply exit':>10} {'to end (s)':>11} {'jobs':>5} {'lost':>5} {'DLQ':>5} {'dup':>5} "
          f"{'API calls':>10} {'extra':>6}")
    for phase in phases:
        sent = load.by_phase.get(phase.name, [])
        lost, dead, duplicated = figures(sent, outcomes, platform)
        print(f"{phase.name:<8} {phase.exit_code:>10} {phase.seconds:>11.1f} {len(sent):>5} {lost:>5} {dead:>5} "
              f"{duplicated:>5} {phase.calls:>10} {phase.calls - noop_calls:>6}")
    print(f"no-op apply: {noop_calls} API calls; all {len(pipe.sent)} jobs: "
          + ("every invariant holds" if not problems else f"{len(problems)} problem(s): {problems[:3]}"))
    print("bad: 'to end' is the apply --wait until the breaker's rollback (exit 1 expected); good: until COMPLETED")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs-per-phase", type=int, default=12)
    parser.add_argument("--rate", type=float, default=0.5, help="jobs per second, steady")
    args = parser.parse_args()
    run(args.jobs_per_phase, args.rate)


if __name__ == "__main__":
    cli()
