"""The service runner's rolling deployment with real task processes and the production container health check.

Tasks are small HTTP servers on HUNTAZE_HEALTH_PORT answering /health 200 (HEALTHY=1) or 503; the check is
the scraper's own (``python -m scraper.healthcheck``) with the production timings of
ecs-specs/onlyfans-scraper-task.yaml, divided by a time scale of 60 (interval 0.5 s, start period 1 s; the
command's timeout stays 5 s).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import yaml

from common.aws import client
from localplane.deployments import COMPLETED, ROLLED_BACK, failure_threshold
from localplane.service_runner import LOCAL_COMMAND_LABEL, ServiceRunner

from .conftest import default_network

REPO = Path(__file__).resolve().parents[2]
SCALE = 60.0
DESIRED = 2
BREAKER = {"minimumHealthyPercent": 100, "maximumPercent": 200,
           "deploymentCircuitBreaker": {"enable": True, "rollback": True}}
TASK_SCRIPT = (
    "import http.server, os, pathlib, signal, sys\n"
    "mark = pathlib.Path(os.environ['MARK_DIR']) / str(os.getpid())\n"
    "mark.write_text(os.environ['RELEASE'])\n"
    "signal.signal(signal.SIGTERM, lambda *a: (mark.unlink(), sys.exit(0)))\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200 if os.environ['HEALTHY'] == '1' else 503); self.end_headers()\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer(('127.0.0.1', int(os.environ['HUNTAZE_HEALTH_PORT'])), H).serve_forever()\n"
)


def production_container() -> dict[str, Any]:
    task = yaml.safe_load((REPO / "ecs-specs/onlyfans-scraper-task.yaml").read_text())
    container: dict[str, Any] = task["spec"]["containerDefinitions"][0]
    return container


def register(tmp_path: Path, release: str, healthy: bool) -> str:
    script = tmp_path / "task.py"
    script.write_text(TASK_SCRIPT)
    prod = production_container()
    assert prod["healthCheck"]["command"] == ["CMD", "python", "-m", "scraper.healthcheck"]
    made = client("ecs").register_task_definition(
        family="t", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{
            "name": "app", "image": "x", "essential": True, "memory": 512, "stopTimeout": prod["stopTimeout"],
            "healthCheck": prod["healthCheck"],
            "environment": [{"name": "MARK_DIR", "value": str(tmp_path)}, {"name": "RELEASE", "value": release},
                            {"name": "HEALTHY", "value": "1" if healthy else "0"}],
            "dockerLabels": {LOCAL_COMMAND_LABEL: f"{sys.executable} {script}"},
        }],
    )
    return str(made["taskDefinition"]["taskDefinitionArn"])


def running_v1(tmp_path: Path) -> tuple[ServiceRunner, str, set[int]]:
    ecs = client("ecs")
    ecs.create_cluster(clusterName="c")
    v1 = register(tmp_path, "v1", healthy=True)
    ecs.create_service(cluster="c", serviceName="s", taskDefinition=v1, desiredCount=DESIRED,
                       launchType="FARGATE", networkConfiguration=default_network())
    runner = ServiceRunner("c", "s", {}, tmp_path / "run", scale=lambda: SCALE)
    (tmp_path / "run").mkdir()
    runner.sync()
    assert [d.rollout_state for d in runner.history] == [COMPLETED]
    return runner, v1, {t.proc.pid for t in runner.tasks}


def release(tmp_path: Path, healthy: bool) -> str:
    v2 = register(tmp_path, "v2", healthy=healthy)
    client("ecs").update_service(cluster="c", service="s", taskDefinition=v2, deploymentConfiguration=BREAKER)
    return v2


def alive(runner: ServiceRunner, pids: set[int]) -> set[int]:
    return {t.proc.pid for t in runner.tasks if t.proc.pid in pids and t.proc.poll() is None}


def serving(runner: ServiceRunner) -> int:
    return sum(1 for t in runner.tasks if t.healthy and t.proc.poll() is None)


def test_good_release_replaces_every_task_one_by_one(aws: str, tmp_path: Path) -> None:
    runner, _, old = running_v1(tmp_path)
    try:
        v2 = release(tmp_path, healthy=True)
        deadline = time.monotonic() + 60
        most = 0
        while (runner.history[-1].task_definition, runner.history[-1].rollout_state) != (v2, COMPLETED):
            assert time.monotonic() < deadline, runner.history[-1]
            runner.sync()
            assert serving(runner) >= DESIRED  # minimumHealthyPercent 100: never fewer healthy tasks
            most = max(most, len(runner.tasks))
            time.sleep(0.1)
        last = runner.history[-1]
        assert (last.rollout_state, last.task_definition, last.failed_tasks) == (COMPLETED, v2, 0), last
        assert most == DESIRED + 1  # one new task at a time (within maximumPercent 200)
        assert alive(runner, old) == set() and [t.task_definition for t in runner.tasks] == [v2, v2]
        marks = sorted(p.read_text() for p in tmp_path.iterdir() if p.name.isdigit())
        assert marks == ["v2", "v2"]  # each old task stopped by SIGTERM (its handler removed its mark)
        assert runner.started == 2 * DESIRED
    finally:
        runner.stop_all()


def test_release_failing_health_checks_trips_breaker_and_rolls_back_with_old_tasks_running(
    aws: str, tmp_path: Path
) -> None:
    runner, v1, old = running_v1(tmp_path)
    try:
        v2 = release(tmp_path, healthy=False)
        deadline = time.monotonic() + 90
        while not any(d.task_definition == v2 and d.rollout_state == ROLLED_BACK for d in runner.history):
            assert time.monotonic() < deadline, runner.history[-1]
            runner.sync()
            assert alive(runner, old) == old  # the old tasks are never touched
            time.sleep(0.1)
        [failed] = [d for d in runner.history if d.task_definition == v2]
        assert failed.task_definition == v2 and failed.failed_tasks == failed.failure_threshold == 3, failed
        assert failed.rollout_state_reason.startswith("circuit breaker: 3 new task(s) in a row failed")
        assert failed.rollout_state_reason.endswith(f"rolled back to {v1}")
        service = client("ecs").describe_services(cluster="c", services=["s"])["services"][0]
        assert service["taskDefinition"] == v1  # the rollback is an UpdateService: the API shows it
        runner.sync()
        states = [(d.task_definition, d.rollout_state) for d in runner.history]
        assert states == [(v1, COMPLETED), (v2, ROLLED_BACK), (v1, COMPLETED)]
        assert {t.proc.pid for t in runner.tasks} == old and alive(runner, old) == old
        assert runner.started == DESIRED + 3  # three new tasks tried, none kept
        stopped = client("ecs").list_tasks(cluster="c", desiredStatus="STOPPED")["taskArns"]
        reasons = [t["stoppedReason"] for t in client("ecs").describe_tasks(cluster="c", tasks=stopped)["tasks"]]
        assert sum("failed container health checks" in r for r in reasons) == 3, reasons
    finally:
        runner.stop_all()


def test_watched_alarm_in_alarm_during_a_release_rolls_it_back(aws: str, tmp_path: Path) -> None:
    runner, v1, old = running_v1(tmp_path)
    cloudwatch = client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName="scraper-failure-rate-critical", Namespace="Huntaze/OnlyFans",
                                MetricName="Failures", Statistic="Sum", Period=60, EvaluationPeriods=1,
                                Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold")
    try:
        v2 = register(tmp_path, "v2", healthy=True)
        watched = {**BREAKER, "alarms": {"alarmNames": ["scraper-failure-rate-critical"], "enable": True,
                                         "rollback": True}}
        client("ecs").update_service(cluster="c", service="s", taskDefinition=v2, deploymentConfiguration=watched)
        runner.sync()  # the first new task starts; the alarm is OK
        assert runner.history[-1].rollout_state == "IN_PROGRESS" and runner.started == DESIRED + 1
        cloudwatch.set_alarm_state(AlarmName="scraper-failure-rate-critical", StateValue="ALARM",
                                   StateReason="the new release fails its jobs")
        runner.sync()
        [release] = [d for d in runner.history if d.task_definition == v2]
        assert release.rollout_state == ROLLED_BACK, release
        assert release.rollout_state_reason == ("alarm(s) in ALARM during the deployment: "
                                                f"scraper-failure-rate-critical; rolled back to {v1}")
        assert {t.proc.pid for t in runner.tasks} == old and alive(runner, old) == old
        service = client("ecs").describe_services(cluster="c", services=["s"])["services"][0]
        assert service["taskDefinition"] == v1
    finally:
        runner.stop_all()


def test_breaker_threshold_is_ecs_half_the_desired_count_between_3_and_200() -> None:
    assert [failure_threshold(n) for n in (0, 1, 6, 7, 9, 400, 1000)] == [3, 3, 3, 4, 5, 200, 200]


def test_stopping_the_service_sends_one_sigterm_and_honours_each_container_stop_timeout(
    aws: str, tmp_path: Path,
) -> None:
    # A task that ignores SIGTERM is SIGKILLed after its container's stopTimeout (here 2 s), not ECS's 30 s
    # default: the same rule for a service shutdown as for a rolling replacement (the controller's task needs 60 s).
    script = tmp_path / "stubborn.py"
    ready = tmp_path / "ignoring"
    terms = tmp_path / "sigterms"
    script.write_text("import pathlib, signal, time\n"  # counts each SIGTERM, and ignores it
                      f"terms = pathlib.Path({str(terms)!r})\n"
                      "signal.signal(signal.SIGTERM, lambda *_: terms.open('a').write('T'))\n"
                      f"pathlib.Path({str(ready)!r}).touch()\n"
                      "while True:\n    time.sleep(0.05)\n")
    ecs = client("ecs")
    ecs.create_cluster(clusterName="c")
    made = ecs.register_task_definition(
        family="t", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": "x", "essential": True, "memory": 512, "stopTimeout": 2,
                               "dockerLabels": {LOCAL_COMMAND_LABEL: f"{sys.executable} {script}"}}])
    ecs.create_service(cluster="c", serviceName="s", taskDefinition=made["taskDefinition"]["taskDefinitionArn"],
                       desiredCount=1, launchType="FARGATE", networkConfiguration=default_network())
    (tmp_path / "run").mkdir()
    runner = ServiceRunner("c", "s", {}, tmp_path / "run", scale=lambda: SCALE)
    runner.sync()
    [task] = runner.tasks
    deadline = time.monotonic() + 60
    while not ready.exists():  # its SIG_IGN is installed (a SIGTERM before that would end it at once)
        assert time.monotonic() < deadline and task.proc.poll() is None
        time.sleep(0.05)
    began = time.monotonic()
    runner.stop_all()
    took = time.monotonic() - began
    assert task.proc.returncode == -9, task.proc.returncode  # SIGKILL: it ignored SIGTERM
    assert 1.5 <= took < 15, took
    # one SIGTERM: a second one tells the controller's task to exit at once, without releasing its lease
    assert terms.read_text() == "T"
