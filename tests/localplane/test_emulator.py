"""The local plane's moto: FIFO long polls see a group freed mid-poll; a receive returns several per group."""

from __future__ import annotations

import threading
import time

from common.aws import client

from .conftest import make_queue


def test_emulator_fifo_long_poll_returns_message_of_group_freed_during_poll(aws: str) -> None:
    sqs = client("sqs")
    url, _ = make_queue("groups.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    sqs.send_message(QueueUrl=url, MessageBody="first", MessageGroupId="g")
    first = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]  # group g is now in flight

    def free_the_group_then_send() -> None:
        time.sleep(1)  # let the long poll below start while g is in flight
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
