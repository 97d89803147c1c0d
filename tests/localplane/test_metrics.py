"""The local plane publishes the AWS metrics that alarms and `status` read (issue 11, item 3), into moto over HTTP.

Each metric is read back from moto's CloudWatch (GetMetricStatistics), as an alarm would read it: SQS depth and the
age of the oldest message (time-scaled), Lambda Invocations/Errors/Throttles/Duration from the mapping runner's
recorder, and ECS CPU and memory utilization from a real task process tree against its reservation.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from common.aws import client
from localplane.metrics import MetricsPublisher, TaskProcess


def statistic(namespace: str, metric: str, dims: dict[str, str], stat: str) -> float | None:
    now = datetime.now(UTC)
    points = client("cloudwatch").get_metric_statistics(
        Namespace=namespace, MetricName=metric, Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1), Period=60, Statistics=[stat],
    )["Datapoints"]
    values = [float(p[stat]) for p in points]
    if not values:
        return None
    return max(values) if stat == "Maximum" else sum(values)


@pytest.fixture
def busy_task() -> Iterator[subprocess.Popen[bytes]]:
    """A task process that burns CPU in its own session and holds ~64 MiB, as a scraper task's tree would."""
    code = "b = bytearray(64 * 2**20)\nwhile True:\n    b[0] = (b[0] + 1) % 256\n"
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_queue_depth_and_scaled_age_of_oldest_message_are_published(aws: str) -> None:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="metrics-probe")["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"job {i}")
    publisher = MetricsPublisher(scale=lambda: 6.0)
    dims = {"QueueName": "metrics-probe"}
    deadline = time.monotonic() + 30
    age: float | None = None
    while (age is None or age < 6) and time.monotonic() < deadline:  # one publish per plane tick, as the plane
        assert publisher.publish() > 0
        age = statistic("AWS/SQS", "ApproximateAgeOfOldestMessage", dims, "Maximum")
    assert statistic("AWS/SQS", "ApproximateNumberOfMessagesVisible", dims, "Maximum") == 3
    assert age is not None and age >= 6, f"age {age}: a message over 1 s old at scale 6 is at least 6 s old"
    sent = statistic("AWS/SQS", "NumberOfMessagesSent", dims, "Sum")
    assert sent == 0, "the first publish only sets the counters' baseline"
    sqs.send_message(QueueUrl=url, MessageBody="job 3")
    publisher.publish()
    assert statistic("AWS/SQS", "NumberOfMessagesSent", dims, "Sum") == 1


def test_lambda_invocations_errors_throttles_and_duration_are_published(aws: str) -> None:
    publisher = MetricsPublisher()
    for duration, error in ((120.0, False), (80.0, True), (200.0, False)):
        publisher.lambdas.record("gate-probe", duration, error=error)
    publisher.lambdas.record("gate-probe", 0.0, error=False, throttled=True)
    publisher.publish()
    dims = {"FunctionName": "gate-probe"}
    assert statistic("AWS/Lambda", "Invocations", dims, "Sum") == 3
    assert statistic("AWS/Lambda", "Errors", dims, "Sum") == 1
    assert statistic("AWS/Lambda", "Throttles", dims, "Sum") == 1
    assert statistic("AWS/Lambda", "Duration", dims, "Maximum") == 200.0
    publisher.publish()  # a publish with no new invocation adds nothing
    assert statistic("AWS/Lambda", "Invocations", dims, "Sum") == 3


def test_ecs_cpu_and_memory_utilization_come_from_the_task_process_tree(
    aws: str, busy_task: subprocess.Popen[bytes]
) -> None:
    # Reservation: 256 CPU units (a quarter core) and 256 MiB. A process spinning on a core uses up to 400 % of
    # that; on a loaded machine it gets less, but never nothing.
    task = TaskProcess(pid=busy_task.pid, cpu_units=256, memory_mib=256)
    services = {("arn:aws:ecs:us-east-1:123456789012:cluster/probe", "probe-svc"): [task]}
    publisher = MetricsPublisher()
    dims = {"ClusterName": "probe", "ServiceName": "probe-svc"}
    publisher.publish(services)  # the first sample is the CPU baseline
    deadline = time.monotonic() + 30
    cpu: float | None = None
    while (cpu is None or cpu <= 20) and time.monotonic() < deadline:  # later samples measure since the last one
        publisher.publish(services)
        cpu = statistic("AWS/ECS", "CPUUtilization", dims, "Maximum")
    memory = statistic("AWS/ECS", "MemoryUtilization", dims, "Maximum")
    assert cpu is not None and cpu > 20, f"CPUUtilization {cpu}: a spinning task uses well over 20 % of a quarter core"
    assert memory is not None and 20 < memory < 100, f"MemoryUtilization {memory}: ~64 MiB of 256 MiB reserved"
