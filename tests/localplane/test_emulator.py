"""The local plane's moto: a mapped queue's messages are left for the plane's poller, never received by moto."""

from __future__ import annotations

import json

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
