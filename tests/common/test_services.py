"""The harness starts real services: a FIFO round trip through moto over HTTP, Lua through real Redis."""

from __future__ import annotations

import redis

from common.aws import client


def test_moto_fifo_queue_round_trip_over_http(aws: str) -> None:
    sqs = client("sqs")
    assert sqs.meta.endpoint_url == aws  # really talking HTTP to the moto server process
    url = sqs.create_queue(
        QueueName="roundtrip.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"}
    )["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="g", MessageDeduplicationId=f"d{i}")
    sqs.send_message(QueueUrl=url, MessageBody="m0-again", MessageGroupId="g", MessageDeduplicationId="d0")
    bodies: list[str] = []
    for _ in range(5):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for msg in got.get("Messages", []):
            bodies.append(msg["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
        if len(bodies) >= 3:
            break
    assert bodies == ["m0", "m1", "m2"]  # in order, and the duplicate dedup id was dropped


def test_redis_lua_script_round_trip(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    script = r.register_script(
        "redis.call('SET', KEYS[1], ARGV[1]); local t = redis.call('TIME'); "
        "return {redis.call('GET', KEYS[1]), tonumber(t[1]) > 0 and 1 or 0}"
    )
    assert script(keys=["k"], args=["v"]) == ["v", 1]
    r.script_flush()
    assert script(keys=["k"], args=["w"]) == ["w", 1]  # reloaded after NOSCRIPT by redis-py
    assert r.info("server")["redis_version"]
