"""Target tracking sets desiredCount from queue depth; the service runner follows desiredCount with processes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from common.aws import client
from localplane.autoscaler import Autoscaler
from localplane.service_runner import LOCAL_COMMAND_LABEL, ServiceRunner

from .conftest import default_network, make_queue

TASK_SCRIPT = (
    "import os, signal, sys, time, pathlib; "
    "p = pathlib.Path(os.environ['MARK_DIR']) / str(os.getpid()); p.write_text(os.environ['GREETING']); "
    "signal.signal(signal.SIGTERM, lambda *a: (p.unlink(), sys.exit(0))); "
    "[time.sleep(0.1) for _ in iter(int, 1)]"
)


def make_service(tmp_path: Path, desired: int) -> None:
    ecs = client("ecs")
    ecs.create_cluster(clusterName="c")
    client("secretsmanager").create_secret(Name="greeting", SecretString="hello")
    secret_arn = client("secretsmanager").describe_secret(SecretId="greeting")["ARN"]
    ecs.register_task_definition(
        family="t", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{
            "name": "app", "image": "x", "essential": True,
            "environment": [{"name": "MARK_DIR", "value": str(tmp_path)}],
            "secrets": [{"name": "GREETING", "valueFrom": secret_arn}],
            "dockerLabels": {LOCAL_COMMAND_LABEL: f"{sys.executable} -c \"{TASK_SCRIPT}\""},
        }],
    )
    ecs.create_service(cluster="c", serviceName="s", taskDefinition="t", desiredCount=desired,
                       launchType="FARGATE", networkConfiguration=default_network())


def marks(tmp_path: Path) -> list[str]:
    return [p.read_text() for p in tmp_path.iterdir() if p.name.isdigit()]


def wait_marks(tmp_path: Path, count: int, timeout_s: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = marks(tmp_path)
        if len(got) == count:
            return got
        time.sleep(0.1)
    return marks(tmp_path)


def test_service_runner_follows_desired_count_with_secrets_injected(aws: str, tmp_path: Path) -> None:
    make_service(tmp_path, desired=2)
    runner = ServiceRunner("c", "s", {}, tmp_path)
    try:
        runner.sync()
        assert wait_marks(tmp_path, 2) == ["hello", "hello"]
        client("ecs").update_service(cluster="c", service="s", desiredCount=1)
        runner.sync()
        assert len(wait_marks(tmp_path, 1)) == 1  # scale-in stopped one task with SIGTERM
        runner.tasks[0].proc.kill()
        runner.tasks[0].proc.wait()
        runner.sync()  # a crashed task is replaced
        assert all(t.proc.poll() is None for t in runner.tasks) and len(runner.tasks) == 1
    finally:
        runner.stop_all()
    assert all(t.proc.poll() is not None for t in runner.tasks)


def test_autoscaler_target_tracking_scales_on_queue_depth_within_bounds(aws: str, tmp_path: Path) -> None:
    make_service(tmp_path, desired=1)
    url, _ = make_queue("work.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    aas = client("application-autoscaling")
    resource = "service/c/s"
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=resource,
                                 ScalableDimension="ecs:service:DesiredCount", MinCapacity=1, MaxCapacity=3)
    aas.put_scaling_policy(
        PolicyName="depth", ServiceNamespace="ecs", ResourceId=resource,
        ScalableDimension="ecs:service:DesiredCount", PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 2.0, "ScaleInCooldown": 300, "ScaleOutCooldown": 0,
            "CustomizedMetricSpecification": {
                "MetricName": "ApproximateNumberOfMessagesVisible", "Namespace": "AWS/SQS", "Statistic": "Average",
                "Dimensions": [{"Name": "QueueName", "Value": "work.fifo"}],
            },
        },
    )
    sqs = client("sqs")
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=str(i), MessageGroupId="g")
    now = [1000.0]
    scaler = Autoscaler(clock=lambda: now[0])
    assert scaler.tick() == [(resource, 1, 3)]  # ceil(5/2) = 3, at max
    sqs.purge_queue(QueueUrl=url)
    now[0] += 10
    assert scaler.tick() == []  # scale-in cooldown (300 s) holds
    now[0] += 300
    assert scaler.tick() == [(resource, 3, 1)]  # back to min capacity
    desired = client("ecs").describe_services(cluster="c", services=["s"])["services"][0]["desiredCount"]
    assert desired == 1
