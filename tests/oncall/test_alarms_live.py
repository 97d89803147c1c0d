"""Alarms raised and cleared on real metric data: the local plane's publisher and evaluator, across processes.

The plane runs as `huntazectl up` runs it (its own thread, real clocks, ``HUNTAZE_TIME_SCALE=60``: a 300 s
alarm period lasts 5 s, queue ages are published in production seconds). Metrics come from their real producers:
queue depths and ages read from the moto server's queues, Lambda Errors from the mapping runner invoking a
failing function in its runtime process, scraper success rates from `scraper.metrics.Metrics`. The alarms are
the production ones of manifests/alarms.yaml; notifications are read from an SQS queue subscribed to the topics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.aws import client
from controller.cli import main as huntazectl
from localplane.plane import LocalPlane
from scraper.metrics import Metrics

from .conftest import REPO, Inbox, states, wait_until

FAILING_HANDLER = "def handler(event, context):\n    raise RuntimeError('gate is misconfigured')\n"


@pytest.fixture
def plane(alarms: Inbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalPlane]:
    monkeypatch.setenv("HUNTAZE_TIME_SCALE", "60")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "failing_gate.py").write_text(FAILING_HANDLER)
    running = LocalPlane(extra_env={"PYTHONPATH": str(pkg)}, log_dir=tmp_path, tick_s=0.5)
    running.start()
    yield running
    running.stop()


def test_alarms_dlq_and_queue_age_raise_and_clear_on_queue_metrics(
    alarms: Inbox, plane: LocalPlane
) -> None:
    assert huntazectl(["apply", "-f", str(REPO / "manifests" / "queues.yaml"), "--env", "local"]) == 0
    sqs = client("sqs")
    dlq = sqs.get_queue_url(QueueName="huntaze-rate-limiter-dlq")["QueueUrl"]
    fifo = sqs.get_queue_url(QueueName="huntaze-hybrid-workflows.fifo")["QueueUrl"]
    for start in range(0, 101, 10):
        sqs.send_message_batch(QueueUrl=dlq, Entries=[
            {"Id": str(i), "MessageBody": "{}", "MessageAttributes": {
                "error": {"DataType": "String", "StringValue": "body: must be a JSON object"}}}
            for i in range(start, min(start + 10, 101))])
    sqs.send_message(QueueUrl=fifo, MessageBody=json.dumps({"n": 1}), MessageGroupId="creator_a",
                     MessageDeduplicationId="one")
    wait_until(lambda: states()["dlq_messages_critical"] == "ALARM", 60, "the DLQ alarm")
    wait_until(lambda: states()["workflows_queue_age_high"] == "ALARM", 60, "the queue-age alarm (> 600 s scaled)")
    sqs.purge_queue(QueueUrl=dlq)
    got = sqs.receive_message(QueueUrl=fifo, MaxNumberOfMessages=1)["Messages"]
    sqs.delete_message(QueueUrl=fifo, ReceiptHandle=got[0]["ReceiptHandle"])
    wait_until(lambda: states()["dlq_messages_critical"] == "OK", 60, "the DLQ alarm to clear")
    wait_until(lambda: states()["workflows_queue_age_high"] == "OK", 60, "the queue-age alarm to clear")
    assert alarms.notified("dlq_messages_critical", "ALARM")
    assert alarms.notified("workflows_queue_age_high", "OK")


def test_alarms_lambda_errors_raise_from_the_mapping_runner_and_clear(
    alarms: Inbox, plane: LocalPlane, tmp_path: Path
) -> None:
    role = client("iam").create_role(RoleName="gate-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("failing_gate.py", FAILING_HANDLER)
    sqs, lam = client("sqs"), client("lambda")
    url = sqs.create_queue(QueueName="gate-source", Attributes={"VisibilityTimeout": "180"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.create_function(FunctionName="huntaze-rate-limiter", Runtime="python3.12", Role=role,
                        Handler="failing_gate.handler", Code={"ZipFile": buf.getvalue()})
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="huntaze-rate-limiter", BatchSize=1)
    plane.alarms.scale = 20.0  # 15 s periods: 55 invocations fit in one even on a loaded machine
    wait_until(lambda: bool(plane.mappings), 30, "the plane to start the mapping runner")
    runner = next(iter(plane.mappings.values()))
    for start in range(0, 55, 10):  # BatchSize 1: one failing invocation per message, 55 Errors > 50
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": json.dumps({"n": i})} for i in range(start, min(start + 10, 55))])
    wait_until(lambda: runner.errors >= 55, 60, "55 failing invocations")
    wait_until(lambda: states()["lambda_errors_critical"] == "ALARM", 60, "the Lambda errors alarm")
    wait_until(lambda: states()["lambda_errors_critical"] == "OK", 60, "the Lambda errors alarm to clear")
    assert alarms.notified("lambda_errors_critical", "ALARM")


def test_alarms_failure_rate_needs_two_bad_periods_then_clears(alarms: Inbox, plane: LocalPlane) -> None:
    metrics = Metrics("Huntaze/OnlyFans", {"Environment": "local"})

    def run_jobs(success: bool, until: str) -> None:
        deadline = time.monotonic() + 90
        while states()["scraper_failure_rate_critical"] != until:
            assert time.monotonic() < deadline, f"no {until} within 90 s"
            for _ in range(4):
                metrics.record_job(success=success, duration_ms=100)
            metrics.flush_sync()
            time.sleep(0.5)  # one flush per half second, as a busy worker's interval would

    run_jobs(False, "ALARM")
    alarm = client("cloudwatch").describe_alarms(AlarmNames=["scraper_failure_rate_critical"])["MetricAlarms"][0]
    evaluated = json.loads(alarm["StateReasonData"])["evaluatedDatapoints"]
    assert len(evaluated) == 2 and all(p["value"] > 50 for p in evaluated)  # 2 of 2 periods breached
    run_jobs(True, "OK")
    assert alarms.notified("scraper_failure_rate_critical", "ALARM")
