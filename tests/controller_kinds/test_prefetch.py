"""Batched reads before a pass: answers are handed out once (a re-read after a write asks AWS), and a batch read
that AWS refuses only costs the per-resource reads, never a wrong answer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from common import aws
from controller.kinds.base import Prefetched
from controller.kinds.registry import handler

QUEUE = {"visibilityTimeout": 180, "tags": {"team": "platform"}}


def test_prefetched_entry_is_handed_out_once_and_none_means_absent() -> None:
    found = Prefetched()
    found.put("queue-url", "a", "http://q/a")
    found.put("queue-url", "b", None)
    assert found.take("queue-url", "a") == (True, "http://q/a")
    assert found.take("queue-url", "a") == (False, None)
    assert found.take("queue-url", "b") == (True, None)
    assert found.take("queue-url", "c") == (False, None)


def test_prefetch_tag_changed_by_hand_is_repaired_and_the_reread_sees_the_write(kit: Any) -> None:
    m = kit.manifest("Queue", "jobs", QUEUE)
    live = kit.reconcile(m)
    aws.client("sqs").tag_queue(QueueUrl=live.physical_id, Tags={"team": "someone-else"})
    writes = kit.writes("sqs")
    repaired = kit.reconcile(m)  # asserts the reconciler saw the write settle (no "did not match yet")
    assert writes.calls == ["TagQueue"]
    assert repaired.tags["team"] == "platform"


def test_prefetch_refused_by_aws_falls_back_to_one_read_per_resource(kit: Any) -> None:
    def refusing(service: str) -> Any:
        if service == "resourcegroupstaggingapi":
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no tag:GetResources"}},
                              "GetResources")
        return aws.client(service)

    kit.ctx = replace(kit.ctx, client=refusing)
    m = kit.manifest("Queue", "jobs", QUEUE)
    kit.reconcile(m)
    writes = kit.writes("sqs")
    live = kit.reconcile(m)
    assert writes.calls == []
    assert live.owned and live.tags["team"] == "platform"


def test_prefetch_alarm_absent_from_the_batch_is_created(kit: Any) -> None:
    spec = {"namespace": "AWS/SQS", "metricName": "NumberOfMessagesSent", "statistic": "Sum", "period": 60,
            "evaluationPeriods": 1, "threshold": 1, "comparisonOperator": "GreaterThanThreshold"}
    first = kit.manifest("Alarm", "first", spec)
    kit.reconcile(first)
    second = kit.manifest("Alarm", "second", spec)
    assert kit.delta(second).fields  # planned as a creation
    kit.reconcile(second)
    assert handler("Alarm").read(second, kit.ctx) is not None
