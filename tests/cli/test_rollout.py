"""`huntazectl rollout` through main(), against moto and deployments the local plane's service runner carried out.

Tasks here have no health check (healthy once still running at the next sync, as ECS counts RUNNING), so a
release takes a few syncs: a task that exits at once is a failed start.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from common.aws import client
from controller.cli import main
from localplane.deployments import COMPLETED, ROLLED_BACK
from localplane.service_runner import LOCAL_COMMAND_LABEL, ServiceRunner

BREAKER = {"minimumHealthyPercent": 100, "maximumPercent": 200,
           "deploymentCircuitBreaker": {"enable": True, "rollback": True}}


def network() -> dict[str, object]:
    ec2 = client("ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:1]
    groups = [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]][:1]
    return {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": groups}}


def register(command: str) -> str:
    made = client("ecs").register_task_definition(
        family="scraper", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": "x", "memory": 512, "stopTimeout": 5,
                               "dockerLabels": {LOCAL_COMMAND_LABEL: command}}],
    )
    return str(made["taskDefinition"]["taskDefinitionArn"])


SLEEPER = f"{sys.executable} -c \"import time; time.sleep(600)\""
CRASHER = f"{sys.executable} -c \"raise SystemExit(3)\""


def sync_until(runner: ServiceRunner, task_definition: str, state: str, failures: int = 0,
               timeout_s: float = 30) -> None:
    """Sync until the latest deployment is of ``task_definition`` in ``state`` (with ``failures`` in a row)."""
    deadline = time.monotonic() + timeout_s
    while not runner.history or (runner.history[-1].task_definition, runner.history[-1].rollout_state) != (
            task_definition, state) or runner.history[-1].consecutive_failures < failures:
        assert time.monotonic() < deadline, runner.history
        runner.sync()
        time.sleep(0.1)


def deployed(tmp_path: Path) -> tuple[ServiceRunner, str]:
    ecs = client("ecs")
    ecs.create_cluster(clusterName="huntaze")
    v1 = register(SLEEPER)
    ecs.create_service(cluster="huntaze", serviceName="scraper", taskDefinition=v1, desiredCount=1,
                       launchType="FARGATE", networkConfiguration=network())
    runner = ServiceRunner("huntaze", "scraper", {}, tmp_path)
    runner.sync()
    return runner, v1


def rollout(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["rollout", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_rollout_status_and_history_show_a_rolled_back_release(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner, v1 = deployed(tmp_path)
    try:
        v2 = register(CRASHER)
        client("ecs").update_service(cluster="huntaze", service="scraper", taskDefinition=v2,
                                     deploymentConfiguration=BREAKER)
        sync_until(runner, v2, "IN_PROGRESS", failures=1)
        code, out = rollout(capsys, "status", "service", "scraper", "--run-dir", str(tmp_path), "-o", "json")
        status = json.loads(out)
        assert code == 0 and status["deployment"]["rollout_state"] == "IN_PROGRESS", out
        assert status["deployment"]["consecutive_failures"] == 1 and status["deployment"]["failure_threshold"] == 3
        assert status["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
        sync_until(runner, v2, ROLLED_BACK, failures=3)
        code, out = rollout(capsys, "status", "service", "scraper", "--run-dir", str(tmp_path))
        assert code == 0
        assert "ROLLED_BACK  scraper:1 -> scraper:2" in out, out
        assert "circuit breaker: 3 new task(s) in a row failed" in out and "rolled back to" in out
        assert "circuit breaker   on, rollback on, trips at 3, 3 failure(s) in a row so far" in out
        assert "rollout state from local plane record" in out and "moto's DescribeServices deployments" in out
        runner.sync()
        client("cloudwatch").put_metric_alarm(
            AlarmName="scraper-failure-rate-critical", Namespace="Huntaze/OnlyFans", MetricName="Failures",
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold")
        watched = {**BREAKER, "alarms": {"alarmNames": ["scraper-failure-rate-critical"], "enable": True,
                                         "rollback": True}}
        client("ecs").update_service(cluster="huntaze", service="scraper", deploymentConfiguration=watched)
        code, out = rollout(capsys, "status", "service", "scraper", "--run-dir", str(tmp_path))
        assert "alarms watched    scraper-failure-rate-critical OK  [CloudWatch]" in out, out
        assert "alarms scraper-failure-rate-critical (rollback on)" in out
        code, out = rollout(capsys, "history", "service", "scraper", "--run-dir", str(tmp_path), "-o", "json")
        history = json.loads(out)
        assert [(d["task_definition"], d["rollout_state"]) for d in history["deployments"]] == [
            (v1, COMPLETED), (v2, ROLLED_BACK), (v1, COMPLETED)]
        code, out = rollout(capsys, "history", "service", "scraper", "--run-dir", str(tmp_path))
        assert code == 0 and out.count("COMPLETED") == 2 and "ROLLED_BACK" in out, out
    finally:
        runner.stop_all()


def test_rollout_undo_points_the_service_back_and_the_plane_rolls_it_out(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner, v1 = deployed(tmp_path)
    try:
        v2 = register(SLEEPER)
        client("ecs").update_service(cluster="huntaze", service="scraper", taskDefinition=v2,
                                     deploymentConfiguration=BREAKER)
        sync_until(runner, v2, COMPLETED)
        code, out = rollout(capsys, "undo", "service", "scraper", "--run-dir", str(tmp_path))
        assert code == 0 and "scraper:2 -> scraper:1 (the one deployment local-2 replaced" in out, out
        service = client("ecs").describe_services(cluster="huntaze", services=["scraper"])["services"][0]
        assert service["taskDefinition"] == v1
        sync_until(runner, v1, COMPLETED)  # a rolling deployment of its own: new task healthy, then old stopped
        assert [t.task_definition for t in runner.tasks] == [v1]
        assert runner.history[-1].previous_task_definition == v2
    finally:
        runner.stop_all()


def test_rollout_without_local_record_reads_describe_services_and_says_so(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ecs = client("ecs")
    ecs.create_cluster(clusterName="huntaze")
    v1 = register(SLEEPER)
    v2 = register(SLEEPER)
    ecs.create_service(cluster="huntaze", serviceName="scraper", taskDefinition=v2, desiredCount=1,
                       launchType="FARGATE", networkConfiguration=network())
    code, out = rollout(capsys, "status", "service", "scraper", "--run-dir", str(tmp_path))
    assert code == 0 and "rollout state from ECS DescribeServices deployments" in out, out
    assert "deployment config not returned by DescribeServices" in out
    code, out = rollout(capsys, "undo", "service", "scraper", "--run-dir", str(tmp_path))
    assert code == 0 and "the family's previous ACTIVE revision" in out, out
    assert ecs.describe_services(cluster="huntaze", services=["scraper"])["services"][0]["taskDefinition"] == v1
    code, out = rollout(capsys, "undo", "service", "scraper", "--run-dir", str(tmp_path))
    assert code == 2 and "no earlier ACTIVE revision" in out, out


def test_rollout_unknown_service_and_function_say_what_to_do(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client("ecs").create_cluster(clusterName="huntaze")
    code, out = rollout(capsys, "status", "service", "nope", "--run-dir", str(tmp_path))
    assert code == 1 and "no ACTIVE ECS service 'nope' in any cluster" in out, out
    code, out = rollout(capsys, "status", "function", "gate")
    assert code == 1 and "no Lambda function 'gate'" in out, out
