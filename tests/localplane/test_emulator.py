"""The local plane's moto: mapped queues are left to the plane; FIFO long polls see groups freed mid-poll, in order."""

from __future__ import annotations

import json
import threading
import time

from common.aws import client

from .conftest import make_queue, zip_of


def test_emulator_mapped_queue_sends_burn_no_receives(aws: str, role_arn: str) -> None:
    url, arn = make_queue("mapped", VisibilityTimeout="30")
    dlq_url, dlq_arn = make_queue("mapped-dlq")
    sqs = client("sqs")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})})
    lam = client("lambda")
    lam.create_function(FunctionName="fn", Runtime="python3.12", Role=role_arn, Handler="fn.handler",
                        Code={"ZipFile": zip_of("def handler(e, c):\n    return {}\n")})
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="fn", BatchSize=10)
    for i in range(6):  # plain moto receives (and fails to invoke) on every send: receive counts climb to the DLQ
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"])
    assert sorted(m["Body"] for m in got["Messages"]) == [str(i) for i in range(6)]
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in got["Messages"]} == {"1"}
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert dlq["ApproximateNumberOfMessages"] == "0"
def test_emulator_fifo_long_poll_returns_message_of_group_freed_during_poll(aws: str) -> None:
    sqs = client("sqs")
    url, _ = make_queue("groups.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    sqs.send_message(QueueUrl=url, MessageBody="first", MessageGroupId="g")
    first = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]  # group g is now in flight

    def free_the_group_then_send() -> None:
        # Give the long poll below time to start while g is in flight. If it started late, the message would simply
        # be returned by a fresh poll: the test could then pass on plain moto too, but it can never fail falsely.
        time.sleep(1)
        sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
        sqs.send_message(QueueUrl=url, MessageBody="second", MessageGroupId="g")

    helper = threading.Thread(target=free_the_group_then_send)
    helper.start()
    # Plain moto returns nothing from this poll (its snapshot still holds g as in flight) after the full 20 s.
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20).get("Messages", [])
    helper.join()
    assert [m["Body"] for m in got] == ["second"]


def test_emulator_fifo_receive_returns_several_messages_of_one_group_in_order(aws: str) -> None:
    sqs = client("sqs")
    url, _ = make_queue("batch.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in got] == ["a", "b", "c"]
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []  # g in flight
