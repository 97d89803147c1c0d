"""The chaos matrix: the real worker process (browser adapter, Chromium) through storms, crashes, hangs and
signals, on the production queue settings, checked against the job-outcome invariants after each scenario.

Queue settings (VisibilityTimeout, maxReceiveCount) come from manifests/queues.yaml, never shortened; time is
scaled through the worker's own settings (retry base, breaker open time, job deadline) where a scenario needs it.
After every scenario (see `check_invariants`):
- every job has exactly one outcome: a result in S3, or a DLQ message with a reason (never both, never none);
- every DLQ message carries ``error`` and ``error_type``;
- no send is recorded twice by the stand-in; per-creator order of sends is the order of the jobs;
- no Chromium of the test is left; every worker exited (SIGTERM) within its shutdown budget.
Long scenarios are ``soak``; the default suite runs a representative fast subset.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from scraper_testkit import Plane, WorkerProcess, chromium_of, job, wait_for

from standin import Error5xxFault, Faults, RateLimitFault

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.helpers.logs_insights import run_query

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
CREATORS = ("alba", "bruno", "chloe")
SHUTDOWN_BUDGET_S = 10.0
# Copied verbatim from the seed design ("CloudWatch Logs Insights Queries"): they must work unchanged.
SCRAPING_PERFORMANCE = """fields @timestamp, duration_ms, creator_id, action, status
| filter status = "success"
| stats avg(duration_ms) as avg_duration, max(duration_ms) as max_duration, count() as total by action"""
ERROR_ANALYSIS = """fields @timestamp, error.type, error.message, creator_id
| filter status = "failure"
| stats count() by error.type
| sort count desc"""


def production_queue() -> tuple[int, int]:
    """(VisibilityTimeout, maxReceiveCount) of huntaze-hybrid-workflows.fifo as manifests/queues.yaml declares."""
    for doc in yaml.safe_load_all((MANIFESTS / "queues.yaml").read_text()):
        if doc and doc["metadata"]["name"] == "huntaze-hybrid-workflows.fifo":
            spec = doc["spec"]
            return int(spec["visibilityTimeout"]), int(spec["deadLetter"]["maxReceiveCount"])
    raise AssertionError("huntaze-hybrid-workflows.fifo is not in manifests/queues.yaml")


@pytest.fixture
def production_plane(plane: Plane) -> Plane:
    visibility, max_receive = production_queue()
    sqs = plane.sqs()
    dlq_arn = sqs.get_queue_attributes(QueueUrl=plane.dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=plane.queue_url, Attributes={
        "VisibilityTimeout": str(visibility),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive})})
    return plane


@dataclass
class Sent:
    message_id: str
    creator: str
    action: str
    text: str = ""


@dataclass
class Run:
    plane: Plane
    standin: Any
    env: dict[str, str]
    start_worker: Callable[[dict[str, str]], WorkerProcess]
    jobs: list[Sent] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)
    exits: list[tuple[int, float]] = field(default_factory=list)  # (exit code, seconds from SIGTERM)

    def send(self, per_creator: int, actions: tuple[str, ...] = ("scrape_profile", "send_message"),
             creators: tuple[str, ...] = CREATORS) -> None:
        for n in range(per_creator):
            for creator in creators:
                action = actions[n % len(actions)]
                text = f"{creator} #{len(self.jobs)}"
                fields = {"text": text} if action == "send_message" else {}
                sent = job(action, creator, n=n, **fields)
                self.jobs.append(Sent(self.plane.send(sent), creator, action, text))

    def worker(self, **overrides: str) -> WorkerProcess:
        process = self.start_worker({**self.env, **overrides})
        process.wait_logged("worker ready", 90)
        self.workers.append(process)
        return process

    def stop(self, process: WorkerProcess) -> None:
        began = time.monotonic()
        process.signal(signal.SIGTERM)
        code = process.wait(60)
        self.exits.append((code, time.monotonic() - began))

    def outcomes(self) -> tuple[dict[str, int], list[dict[str, Any]]]:
        results: dict[str, int] = {}
        for key in self.plane.result_keys():
            message_id = key.rsplit("/", 1)[-1].removesuffix(".json")
            results[message_id] = results.get(message_id, 0) + 1
        return results, self.plane.drain_dead_letters()

    def ended(self) -> bool:
        visible, in_flight = self.plane.counts()
        dlq_visible, dlq_hidden = self.plane.counts(self.plane.dlq_url)
        return visible == 0 and in_flight == 0 and \
            len(self.plane.result_keys()) + dlq_visible + dlq_hidden >= len(self.jobs)

    def lines(self) -> list[dict[str, Any]]:
        return [line for process in self.workers for line in process.lines]


def check_invariants(run: Run, tag: str) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    results, dead_raw = run.outcomes()
    dead: dict[str, dict[str, str]] = {}
    for message in dead_raw:
        attributes = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
        assert attributes.get("error") and attributes.get("error_type"), f"DLQ message without a reason: {message}"
        origin = attributes["origin_message_id"]
        assert origin not in dead, f"{origin} dead-lettered twice"
        dead[origin] = attributes
    for sent in run.jobs:
        outcomes = results.get(sent.message_id, 0) + (sent.message_id in dead)
        assert outcomes == 1, f"{sent} has {outcomes} outcomes (result: {sent.message_id in results}, " \
                              f"DLQ: {dead.get(sent.message_id)})"
    records = run.standin.state.messages()
    texts = [m.text for m in records]
    assert len(texts) == len(set(texts)), f"a send was recorded twice: {sorted(texts)}"
    for creator in {s.creator for s in run.jobs}:
        expected = [s.text for s in run.jobs if s.creator == creator and s.action == "send_message"]
        got = [m.text for m in records if m.creator_id == creator]
        if got != [t for t in expected if t in got]:
            history = [(w, line.get("timestamp"), line.get("message"), line.get("message_id"),
                        line.get("receive_count"), line.get("status")) for w, process in enumerate(run.workers)
                       for line in process.lines if line.get("creator_id") == creator]
            pytest.fail(f"{creator}'s sends out of order: {got}; its jobs: "
                        f"{[(s.message_id, s.text) for s in run.jobs if s.creator == creator]}; log: {history}")
    for code, seconds in run.exits:
        assert code == 0 and seconds <= SHUTDOWN_BUDGET_S, f"exit {code} after {seconds:.1f}s (budget " \
                                                           f"{SHUTDOWN_BUDGET_S:g}s)"
    wait_for(lambda: not chromium_of(tag), 15, "every Chromium of the test to exit")
    return results, dead


@pytest.fixture
def chaos(production_plane: Plane, standin: Any, scraper_env: dict[str, str], worker_processes: Any) -> Run:
    env = {**scraper_env, "HUNTAZE_ADAPTER": "browser", "HUNTAZE_CONCURRENCY": "3",
           "HUNTAZE_WAIT_TIME_S": "2", "HUNTAZE_ACTION_TIMEOUT_S": "10", "HUNTAZE_JOB_DEADLINE_S": "60",
           "HUNTAZE_HEARTBEAT_INTERVAL_S": "10", "HUNTAZE_SHUTDOWN_BUDGET_S": str(SHUTDOWN_BUDGET_S),
           "HUNTAZE_RETRY_BASE_S": "0.2", "HUNTAZE_BREAKER_OPEN_S": "3"}
    return Run(production_plane, standin, env, worker_processes)


def _storm(run: Run, faults: Faults, storm_s: float, per_creator: int) -> None:
    run.standin.set_faults(faults)
    run.send(per_creator)
    worker = run.worker()
    time.sleep(storm_s)  # the storm's length is the scenario, not a wait for a condition
    run.standin.set_faults(Faults())
    wait_for(run.ended, 240, "every job to end after the storm")
    run.stop(worker)


def check_performance_query(run: Run) -> None:
    """The seed's "Scraping Performance" query finds every successful job, with its duration, by action."""
    rows, performance = run_query(SCRAPING_PERFORMANCE, run.lines())
    assert rows and all(r["duration_ms"] is not None and r["creator_id"] and r["action"] for r in rows)
    assert {row["action"] for row in performance} <= {"scrape_profile", "send_message"} and performance
    assert all(row["avg_duration"] is not None and row["max_duration"] is not None for row in performance)


def scenario_429_storm(run: Run, tag: str, storm_s: float = 8.0) -> None:
    _storm(run, Faults(rate_limit=RateLimitFault(limit=0, window_s=60, retry_after_s=1)), storm_s, 3)
    results, dead = check_invariants(run, tag)
    assert dead == {}, f"a 429 storm dead-lettered valid jobs: {dead}"
    assert len(results) == len(run.jobs)
    check_performance_query(run)
    assert sum(row["total"] for row in run_query(SCRAPING_PERFORMANCE, run.lines())[1]) == len(run.jobs)


def scenario_5xx_storm(run: Run, tag: str, storm_s: float = 8.0) -> None:
    _storm(run, Faults(error_5xx=Error5xxFault(rate=1.0, status=503)), storm_s, 3)
    _, dead = check_invariants(run, tag)
    assert all("503" in reason["error"] for reason in dead.values()), dead
    lines = run.lines()
    _, errors = run_query(ERROR_ANALYSIS, lines)
    if dead:  # the seed's error analysis finds the dead-lettered jobs by error.type
        assert {row["error.type"] for row in errors} >= {"network"}, errors
    check_performance_query(run)


def scenario_renderer_crash(run: Run, tag: str, action: str) -> None:
    run.standin.set_faults(Faults(crash_creators=["crashy"]))
    run.send(1, actions=(action,), creators=("crashy",))
    run.send(1, creators=("alba",))
    worker = run.worker()
    wait_for(run.ended, 180, "every job to end")
    run.stop(worker)
    _results, dead = check_invariants(run, tag)
    (crashed,) = [s for s in run.jobs if s.creator == "crashy"]
    assert "crash" in dead[crashed.message_id]["error"].lower(), dead
    detected = [line for line in run.lines() if line.get("message") == "browser crash detected"]
    assert detected, "the crash was not detected by the page's crash event"
    attempts = [line["attempts"] for line in run.lines() if line.get("message") == "attempts"]
    assert all("ActionTimeout" not in step for ladder in attempts for step in ladder), attempts
    _, errors = run_query(ERROR_ANALYSIS, run.lines())
    assert {row["error.type"] for row in errors} == {"unknown"}, errors


def scenario_never_loading(run: Run, tag: str) -> None:
    run.standin.set_faults(Faults(hang_creators=["stuck"]))
    run.send(1, actions=("get_messages",), creators=("stuck",))
    run.send(1, creators=("alba",))
    worker = run.worker(HUNTAZE_ACTION_TIMEOUT_S="2", HUNTAZE_JOB_DEADLINE_S="8")
    wait_for(run.ended, 240, "every job to end")
    run.stop(worker)
    _, dead = check_invariants(run, tag)
    (stuck,) = [s for s in run.jobs if s.creator == "stuck"]
    assert "timed out" in dead[stuck.message_id]["error"], dead


def scenario_sigterm_mid_job(run: Run, tag: str) -> None:
    run.standin.set_faults(Faults(latency_ms=1500))
    run.send(3)
    first = run.worker()
    wait_for(lambda: bool(first.logged("job done")), 120, "a first job to end")
    run.stop(first)  # mid-job: the others are running or held
    run.standin.set_faults(Faults())
    second = run.worker()
    # Usually seconds: the stopped worker releases what it held. Bounded by the production visibility timeout:
    # a message the stopped worker could not release comes back then (at least once), and must still end once.
    # (Once, with the soak suite running beside the default suite, 180 s was not enough; cause not found.)
    visibility, _ = production_queue()
    wait_for(run.ended, visibility + 120, "every job to end after the restart")
    run.stop(second)
    _, dead = check_invariants(run, tag)
    assert dead == {}


def scenario_sigkill_mid_send(run: Run, tag: str) -> None:
    run.standin.set_faults(Faults(latency_ms=800))
    run.send(2, actions=("send_message",))
    first = run.worker()

    def mid_send() -> bool:
        routes = run.standin.state.stats()["by_route"]
        return any("/inbox/" in route and counts.get("200") for route, counts in routes.items())

    wait_for(mid_send, 120, "a send form to be served (a job is mid-send)")
    first.proc.kill()
    first.wait(10)
    wait_for(lambda: not chromium_of(tag), 15, "the killed worker's Chromium to exit")
    run.standin.set_faults(Faults())
    # The killed worker's messages come back after the production visibility timeout: a fresh worker takes them.
    second = run.worker()
    visibility, _ = production_queue()
    wait_for(run.ended, visibility + 180, "every job to end after the restart")
    run.stop(second)
    results, dead = check_invariants(run, tag)
    assert dead == {} and len(results) == len(run.jobs)


def scenario_breaker_open_past_visibility(run: Run, tag: str) -> None:
    visibility, _ = production_queue()
    run.standin.set_faults(Faults(rate_limit=RateLimitFault(limit=0, window_s=600, retry_after_s=1)))
    run.send(2)
    worker = run.worker(HUNTAZE_BREAKER_OPEN_S=str(visibility + 30), HUNTAZE_BREAKER_THRESHOLD="2")
    wait_for(lambda: bool(worker.logged("circuit breaker opened")), 120, "the breaker to open")
    run.standin.set_faults(Faults())
    wait_for(run.ended, visibility + 240, "every job to end once the breaker closes")
    run.stop(worker)
    results, dead = check_invariants(run, tag)
    assert dead == {} and len(results) == len(run.jobs)


FAST = pytest.mark.browser
SOAK = pytest.mark.soak
SCENARIOS = [
    pytest.param(scenario_429_storm, {}, id="429-storm", marks=FAST),
    pytest.param(scenario_429_storm, {"storm_s": 30.0}, id="429-storm-10min-scaled", marks=SOAK),
    pytest.param(scenario_5xx_storm, {}, id="5xx-storm", marks=SOAK),
    pytest.param(scenario_renderer_crash, {"action": "get_messages"}, id="crash-thread", marks=SOAK),
    pytest.param(scenario_renderer_crash, {"action": "scrape_profile"}, id="crash-profile", marks=SOAK),
    pytest.param(scenario_renderer_crash, {"action": "send_message"}, id="crash-send-form", marks=SOAK),
    pytest.param(scenario_renderer_crash, {"action": "download_media"}, id="crash-media", marks=SOAK),
    pytest.param(scenario_never_loading, {}, id="never-loading", marks=SOAK),
    pytest.param(scenario_sigterm_mid_job, {}, id="sigterm-mid-job", marks=SOAK),
    pytest.param(scenario_sigkill_mid_send, {}, id="sigkill-mid-send-restart", marks=SOAK),
    pytest.param(scenario_breaker_open_past_visibility, {}, id="breaker-open-past-visibility", marks=SOAK),
]


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("scenario", "options"), SCENARIOS)
def test_chaos_scenario_every_job_ends_exactly_once(scenario: Callable[..., None], options: dict[str, Any],
                                                    chaos: Run, worker_tag: str) -> None:
    scenario(chaos, worker_tag, **options)


