"""Fixtures for the on-call tests: the seed's alarms and topics applied to moto, and an inbox on their topics."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from common.aws import client
from controller.cli import main as huntazectl

REPO = Path(__file__).resolve().parents[2]


def put(namespace: str, name: str, dims: dict[str, str], value: float, at: datetime) -> None:
    client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=[{
        "MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
        "Value": value, "Timestamp": at,
    }])


def states() -> dict[str, str]:
    alarms = client("cloudwatch").describe_alarms(AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    return {a["AlarmName"]: a["StateValue"] for a in alarms}


class Inbox:
    """An SQS queue subscribed to both alert topics: what a pager or Slack would receive."""

    def __init__(self) -> None:
        sqs, sns = client("sqs"), client("sns")
        self.url = sqs.create_queue(QueueName="oncall-inbox")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for topic in sns.list_topics()["Topics"]:
            sns.subscribe(TopicArn=topic["TopicArn"], Protocol="sqs", Endpoint=arn,
                          Attributes={"RawMessageDelivery": "true"})
        self.received: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        sqs = client("sqs")
        while True:
            got = sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = got.get("Messages", [])
            if not messages:
                return self.received
            for m in messages:
                self.received.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])

    def notified(self, alarm: str, state: str) -> bool:
        return any(n["AlarmName"] == alarm and n["NewStateValue"] == state for n in self.drain())


@pytest.fixture
def alarms(aws: str) -> Inbox:
    """The nine alarms of manifests/alarms.yaml (production settings) and their topics, applied to moto."""
    code = huntazectl(["apply", "-f", str(REPO / "manifests" / "alarms.yaml"), "-f",
                       str(REPO / "manifests" / "topics.yaml"), "--env", "local"])
    assert code == 0
    return Inbox()


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.25) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
