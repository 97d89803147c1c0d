"""The handler on real SQS events (moto over HTTP) and a real Redis: where each kind of record lands."""

from __future__ import annotations

import io
import json
import random
import re
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis

from common.identity import deduplication_id
from common.producer import Producer
from gate import handler as gate_handler
from gate.limiter import BREAKER_OPEN_KEY
from gate.telemetry import decision_message
from gate.telemetry import logger as gate_logger
from localplane.services import RedisServer
from tests.gate.factories import Queues, make_job, sqs_event

SEED_QUERY = re.compile(r"allowed: (?P<allowed>\w+), retryAfter: (?P<retry>\d+), remainingTokens: (?P<tokens>\d+)")


def receive_from_ingress(queues: Queues, jobs: list[Any]) -> list[dict[str, Any]]:
    """Send raw bodies to the ingress queue and receive them back as real SQS messages."""
    sqs = queues.sqs
    for start in range(0, len(jobs), 10):
        sqs.send_message_batch(QueueUrl=queues.ingress, Entries=[
            {"Id": str(i), "MessageBody": j if isinstance(j, str) else json.dumps(j)}
            for i, j in enumerate(jobs[start : start + 10])])
    got: list[dict[str, Any]] = []
    for _ in range(20):
        if len(got) >= len(jobs):
            break
        resp = sqs.receive_message(QueueUrl=queues.ingress, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   MessageAttributeNames=["All"], AttributeNames=["All"])
        got += resp.get("Messages", [])
    assert len(got) == len(jobs)
    return got


def invoke(queues: Queues, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Call the handler as Lambda would, and delete the records it reports done."""
    result = gate_handler.handler(sqs_event(messages), None)
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    done = [m for m in messages if m["MessageId"] not in failed]
    for start in range(0, len(done), 10):
        queues.sqs.delete_message_batch(QueueUrl=queues.ingress, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])])
    return result


def delayed(queues: Queues) -> int:
    got = queues.sqs.get_queue_attributes(QueueUrl=queues.ingress, AttributeNames=["All"])["Attributes"]
    return int(got["ApproximateNumberOfMessagesDelayed"])


def attrs(message: dict[str, Any]) -> dict[str, str]:
    return {k: v["StringValue"] for k, v in (message.get("MessageAttributes") or {}).items()}


def test_handler_mixed_batch_each_kind_lands_in_its_place(queues: Queues) -> None:
    valid = [make_job(creator_id=f"creator-{i}") for i in range(12)]
    bad_contract = make_job(action="send_message")  # message_content missing
    messages = receive_from_ingress(queues, [*valid[:7], "{not json", bad_contract])
    messages += receive_from_ingress(queues, valid[7:])
    first = invoke(queues, messages[:9])
    second = invoke(queues, messages[9:])
    assert first == {"batchItemFailures": []} and second == {"batchItemFailures": []}

    forwarded = queues.drain(queues.workflows)
    assert len(forwarded) == 10  # global=10/2s
    one = forwarded[0]
    assert one["Attributes"]["MessageGroupId"].startswith("creator-")
    a = attrs(one)
    assert set(a) == {"rate_limit_timestamp", "tokens_remaining", "rate_limiter_version", "origin_message_id",
                      "gate_deferrals"}
    assert a["gate_deferrals"] == "0" and a["rate_limiter_version"] == "2.0.0"
    origin = next(m for m in messages if m["MessageId"] == a["origin_message_id"])
    job = json.loads(origin["Body"])
    assert one["Body"] == origin["Body"]
    assert one["Attributes"]["MessageDeduplicationId"] == deduplication_id(f"cid:{job['metadata']['correlation_id']}")

    dead = queues.drain(queues.ingress_dlq)
    assert len(dead) == 2
    errors = [attrs(m)["error"] for m in dead]
    assert any(e.startswith("body: not valid JSON") for e in errors)
    assert any("message_content is required" in e for e in errors)
    assert all(attrs(m)["origin_message_id"] in {x["MessageId"] for x in messages} for m in dead)

    assert delayed(queues) == 2 and queues.depth(queues.ingress) == 2  # two copies, delayed to their slot
    assert queues.depth(queues.workflows_dlq) == 0


def test_handler_throttled_copy_carries_history_and_reserved_slot(queues: Queues, pump: Any) -> None:
    messages = receive_from_ingress(queues, [make_job() for _ in range(11)])
    assert invoke(queues, messages) == {"batchItemFailures": []}
    copies: list[dict[str, Any]] = []
    for _ in range(10):
        resp = queues.sqs.receive_message(QueueUrl=queues.ingress, WaitTimeSeconds=1, MessageAttributeNames=["All"],
                                          AttributeNames=["All"])
        copies += resp.get("Messages", [])
        if copies:
            break
    assert len(copies) == 1
    a = attrs(copies[0])
    assert a["gate_deferrals"] == "1" and a["defer_reason"] == "rate_limited"
    assert a["origin_message_id"] == messages[10]["MessageId"]
    assert {"first_seen", "reserved_slot"} <= set(a)
    assert copies[0]["Attributes"]["ApproximateReceiveCount"] == "1"


def test_handler_fifo_send_failure_reports_records_and_keeps_reservation(
    queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUNTAZE_WORKFLOWS_QUEUE_URL", queues.workflows.replace(".fifo", "-missing.fifo"))
    gate_handler.reset()
    messages = receive_from_ingress(queues, [make_job() for _ in range(3)])
    result = invoke(queues, messages)
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(m["MessageId"] for m in messages)
    monkeypatch.setenv("HUNTAZE_WORKFLOWS_QUEUE_URL", queues.workflows)
    gate_handler.reset()
    assert invoke(queues, messages) == {"batchItemFailures": []}
    assert len(queues.drain(queues.workflows)) == 3
    assert queues.depth(queues.ingress_dlq) == 0


def test_handler_defer_send_failure_reports_only_those_records(
    queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUNTAZE_RATE_LIMITS", "global=1/60s")
    monkeypatch.setenv("HUNTAZE_INGRESS_QUEUE_URL", queues.ingress + "-missing")
    gate_handler.reset()
    messages = receive_from_ingress(queues, [make_job() for _ in range(3)])
    result = invoke(queues, messages)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [m["MessageId"] for m in messages[1:]]
    assert len(queues.drain(queues.workflows)) == 1


def test_handler_breaker_open_defers_everything_for_its_ttl(queues: Queues, redis_url: str) -> None:
    redis.Redis.from_url(redis_url).set(BREAKER_OPEN_KEY, "429 Retry-After 3", px=2500)
    messages = receive_from_ingress(queues, [make_job() for _ in range(4)])
    assert invoke(queues, messages) == {"batchItemFailures": []}
    assert queues.depth(queues.workflows) == 0
    attrs_ = queues.sqs.get_queue_attributes(QueueUrl=queues.ingress, AttributeNames=["All"])["Attributes"]
    assert int(attrs_["ApproximateNumberOfMessagesDelayed"]) == 4


def test_handler_redis_down_defers_without_dead_letter(
    queues: Queues, monkeypatch: pytest.MonkeyPatch, redis_factory: Callable[[], RedisServer]
) -> None:
    private = redis_factory()
    monkeypatch.setenv("REDIS_URL", private.url)
    private.kill()
    gate_handler.reset()
    messages = receive_from_ingress(queues, [make_job() for _ in range(5)])
    assert invoke(queues, messages) == {"batchItemFailures": []}
    assert queues.depth(queues.workflows) == 0 and queues.depth(queues.ingress_dlq) == 0
    assert delayed(queues) == 5 and queues.depth(queues.ingress) == 5


def test_handler_fail_open_forwards_while_redis_down(
    queues: Queues, monkeypatch: pytest.MonkeyPatch, redis_factory: Callable[[], RedisServer]
) -> None:
    private = redis_factory()
    monkeypatch.setenv("REDIS_URL", private.url)
    monkeypatch.setenv("HUNTAZE_GATE_FAIL_OPEN", "true")
    private.kill()
    gate_handler.reset()
    messages = receive_from_ingress(queues, [make_job() for _ in range(3)])
    assert invoke(queues, messages) == {"batchItemFailures": []}
    forwarded = queues.drain(queues.workflows)
    assert len(forwarded) == 3 and attrs(forwarded[0])["tokens_remaining"] == "-1"


def test_handler_same_action_creator_timestamp_distinct_jobs_both_delivered(queues: Queues) -> None:
    twin = make_job()
    twin["metadata"] = {"priority": "normal"}  # no correlation id: identity is the ingress message id
    messages = receive_from_ingress(queues, [twin, dict(twin)])
    assert invoke(queues, messages) == {"batchItemFailures": []}
    assert len(queues.drain(queues.workflows)) == 2


def test_handler_redelivered_message_forwarded_once(queues: Queues) -> None:
    messages = receive_from_ingress(queues, [make_job()])
    assert invoke(queues, messages) == {"batchItemFailures": []}
    assert invoke(queues, messages) == {"batchItemFailures": []}
    assert len(queues.drain(queues.workflows)) == 1
    # A copy of the same job in one batch shares the first record's fate.
    twice = receive_from_ingress(queues, [make_job(metadata={"correlation_id": "dup-1"})] * 2)
    assert invoke(queues, twice) == {"batchItemFailures": []}
    assert len(queues.drain(queues.workflows)) == 1


def test_handler_garbage_event_never_raises(queues: Queues) -> None:
    assert gate_handler.handler({"nope": 1}, None) == {"batchItemFailures": []}
    assert gate_handler.handler(None, None) == {"batchItemFailures": []}
    record = {"messageId": "m-1", "body": None}
    assert gate_handler.handler({"Records": [record, "junk"]}, None) == {"batchItemFailures": []}
    assert len(queues.drain(queues.ingress_dlq)) == 1


def test_handler_missing_settings_fails_the_invocation_naming_the_variable(
    queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gate that cannot start judges nothing: the whole invocation fails (Lambda error, batch redelivered)."""
    monkeypatch.delenv("HUNTAZE_WORKFLOWS_QUEUE_URL")
    gate_handler.reset()
    messages = receive_from_ingress(queues, [make_job() for _ in range(2)])
    with pytest.raises(gate_handler.GateMisconfigured, match="HUNTAZE_WORKFLOWS_QUEUE_URL"):
        invoke(queues, messages)
    assert queues.drain(queues.ingress_dlq) == []


def test_handler_logs_seed_query_line_and_emf_metrics(
    queues: Queues, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The production window (10 per 60 s): with the fixture's 2 s window, a loaded machine could let the window
    # pass between the two invocations and admit all 12.
    monkeypatch.setenv("HUNTAZE_RATE_LIMITS", "global=10/60s")
    gate_handler.reset()
    log_stream = io.StringIO()
    gate_logger.registered_handler.setStream(log_stream)
    assert SEED_QUERY.search(decision_message(True, 0, 9, "admitted"))
    assert SEED_QUERY.search(decision_message(False, 3, 0, "breaker_open"))["allowed"] == "false"  # type: ignore[index]
    messages = receive_from_ingress(queues, [make_job() for _ in range(12)])
    capsys.readouterr()
    invoke(queues, messages[:10])
    invoke(queues, messages[10:])
    gate_logger.registered_handler.setStream(sys.stdout)
    out = capsys.readouterr().out + log_stream.getvalue()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    decisions = [line for line in lines if "Token bucket result" in str(line.get("message"))]
    assert len(decisions) == 12
    parsed = [SEED_QUERY.search(json.dumps(line)) for line in decisions]
    assert all(parsed)
    assert sum(1 for p in parsed if p and p["allowed"] == "true") == 10
    emf = [line for line in lines if "_aws" in line]
    assert emf and emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Huntaze/Gate"
    assert sum(line["rate_limit_allowed_count"][0] for line in emf) == 10
    assert sum(line["rate_limit_rejected_count"][0] for line in emf) == 2


def _decision_lines(run: Callable[[], Any]) -> list[str]:
    log_stream = io.StringIO()
    handler = gate_logger.registered_handler
    previous, handler.stream = handler.stream, log_stream  # no flush of a stream an earlier test may have closed
    try:
        run()
    finally:
        handler.stream = previous
    return [str(json.loads(line)["message"]) for line in log_stream.getvalue().splitlines()
            if line.startswith("{") and "Token bucket result" in line]


def test_handler_breaker_open_or_redis_unreachable_says_so_in_the_seed_line(
    queues: Queues, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis.Redis.from_url(redis_url).set(BREAKER_OPEN_KEY, "429 from target", px=30_000)
    breaker_lines = _decision_lines(lambda: invoke(queues, receive_from_ingress(queues, [make_job()])))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    gate_handler.reset()
    down_lines = _decision_lines(lambda: invoke(queues, receive_from_ingress(queues, [make_job()])))
    for lines, reason in ((breaker_lines, "breaker_open"), (down_lines, "redis_unreachable")):
        assert len(lines) == 1 and lines[0].endswith(f"reason: {reason}")
        parsed = SEED_QUERY.search(lines[0])
        assert parsed and parsed["allowed"] == "false" and int(parsed["retry"]) > 0


@pytest.mark.parametrize("seed", [1, 2])
def test_handler_one_creators_jobs_sent_in_one_batch_forwarded_in_enqueue_order(
    queues: Queues, monkeypatch: pytest.MonkeyPatch, seed: int,
) -> None:
    """Messages of one SendMessageBatch often share a SentTimestamp (millisecond resolution); the producer's
    first_seen attribute still orders them, whatever order they are received and decided in."""
    monkeypatch.setenv("HUNTAZE_RATE_HOLD_MAX_S", "5")  # production holding: the order settle is on
    gate_handler.reset()
    texts = [f"message {i:02d}" for i in range(10)]
    with Producer(url=queues.ingress) as producer:
        for text in texts:
            producer.enqueue(make_job(action="send_message", creator_id="creator-o", message_content=text,
                                      metadata={"correlation_id": f"job-{uuid.uuid4().hex}"}))  # no order in ids
    messages = receive_from_ingress_only(queues, len(texts))
    for message in messages:  # the same millisecond for all, as a batch often gets (seen in the soak tests)
        message["Attributes"]["SentTimestamp"] = messages[0]["Attributes"]["SentTimestamp"]
    random.Random(seed).shuffle(messages)
    assert invoke(queues, messages) == {"batchItemFailures": []}
    forwarded = queues.drain(queues.workflows)
    assert [json.loads(m["Body"])["message_content"] for m in forwarded] == texts


def receive_from_ingress_only(queues: Queues, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    for _ in range(20):
        if len(got) >= count:
            break
        got += queues.sqs.receive_message(QueueUrl=queues.ingress, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                          MessageAttributeNames=["All"], AttributeNames=["All"]).get("Messages", [])
    assert len(got) == count
    return got
