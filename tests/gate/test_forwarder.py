"""A partially failed SendMessageBatch, through the real gate: the rejected entry is retried alone, and if that
fails too only its record becomes a batch item failure.

moto never fails single entries of a batch, so `Sender`'s client (its seam) is a thin wrapper that forwards every
call to moto over HTTP but withholds one chosen entry of a SendMessageBatch and reports it as Failed. When asked,
the single SendMessage of that entry fails for real: the wrapper sends it to a queue that does not exist.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from common import redis_keys
from common.settings import load_settings
from gate.batch import Gate
from gate.forwarder import Sender
from gate.limiter import Limiter
from gate.settings import GateSettings
from tests.gate.factories import Queues, make_job, sqs_event


class OneEntryFails:
    """An SQS client for `Sender`: real calls to moto, except one entry (by body) of each SendMessageBatch is
    reported Failed without being sent; its SendMessage alone fails too when `single_fails`."""

    def __init__(self, sqs: Any, fail_body: str, *, single_fails: bool) -> None:
        self.sqs = sqs
        self.fail_body = fail_body
        self.single_fails = single_fails
        self.single_sends: list[str] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        kept = [e for e in Entries if e["MessageBody"] != self.fail_body]
        withheld = [e for e in Entries if e["MessageBody"] == self.fail_body]
        response: dict[str, Any] = {"Successful": [], "Failed": []}
        if kept:
            response = dict(self.sqs.send_message_batch(QueueUrl=QueueUrl, Entries=kept))
        failed = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected by the test"}
                  for e in withheld]
        return {**response, "Failed": [*response.get("Failed", []), *failed]}

    def send_message(self, *, QueueUrl: str, **kwargs: Any) -> dict[str, Any]:
        self.single_sends.append(kwargs["MessageBody"])
        if self.single_fails and kwargs["MessageBody"] == self.fail_body:
            QueueUrl = QueueUrl.replace(".fifo", "-missing.fifo")  # moto answers NonExistentQueue
        return dict(self.sqs.send_message(QueueUrl=QueueUrl, **kwargs))


def received(queues: Queues, count: int) -> list[dict[str, Any]]:
    queues.send_jobs([make_job(creator_id=f"creator-{i}") for i in range(count)])
    got: list[dict[str, Any]] = []
    for _ in range(20):
        if len(got) >= count:
            break
        got += queues.sqs.receive_message(QueueUrl=queues.ingress, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                          MessageAttributeNames=["All"], AttributeNames=["All"]).get("Messages", [])
    assert len(got) == count
    return got


def gate_with(client: Any) -> Gate:
    settings = load_settings(GateSettings)
    return Gate(settings, Limiter.from_settings(settings), Sender(client))


def forwarded_bodies(queues: Queues) -> list[str]:
    return [m["Body"] for m in queues.drain(queues.workflows)]


def test_forwarder_rejected_batch_entry_sent_alone_all_records_done(queues: Queues) -> None:
    messages = received(queues, 3)
    chosen = messages[1]
    client = OneEntryFails(queues.sqs, chosen["Body"], single_fails=False)
    failures = gate_with(client).process(sqs_event(messages)["Records"])
    assert failures == []
    assert client.single_sends == [chosen["Body"]], "only the rejected entry is retried, once, alone"
    assert sorted(forwarded_bodies(queues)) == sorted(m["Body"] for m in messages)


def test_forwarder_rejected_entry_and_single_send_fail_only_that_record_fails(queues: Queues, redis_url: str) -> None:
    messages = received(queues, 3)
    chosen = messages[1]
    client = OneEntryFails(queues.sqs, chosen["Body"], single_fails=True)
    failures = gate_with(client).process(sqs_event(messages)["Records"])
    assert failures == [chosen["MessageId"]], "only the record whose send failed is reported"
    assert client.single_sends == [chosen["Body"]]
    assert sorted(forwarded_bodies(queues)) == sorted(m["Body"] for m in messages if m is not chosen)
    marks = redis.Redis.from_url(redis_url)
    correlation = json.loads(chosen["Body"])["metadata"]["correlation_id"]
    assert marks.get(redis_keys.gate_job(f"cid:{correlation}")) != b"f", "an unsent job must not be marked"
    # SQS redelivers the failed record; with a healthy client it is forwarded now, and nothing twice.
    assert gate_with(queues.sqs).process(sqs_event([chosen])["Records"]) == []
    assert forwarded_bodies(queues) == [chosen["Body"]]
