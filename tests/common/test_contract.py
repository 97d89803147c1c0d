"""The message contract: every kind of bad payload gives a field-level error; valid ones round-trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.contract import (
    SQS_MAX_BODY_BYTES,
    Action,
    ContractError,
    Job,
    ScraperResultData,
    check_body_size,
    json_schema,
    parse_job,
)
from common.identity import deduplication_id, message_identity


def valid(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "action": "send_message",
        "creator_id": "creator_123",
        "user_id": "user_456",
        "message_content": "Hello!",
        "timestamp": "2025-10-29T12:00:00Z",
        "metadata": {"campaign_id": "campaign_789", "priority": "normal", "correlation_id": "c-1"},
    }
    base.update(overrides)
    return base


def without(key: str, **overrides: Any) -> dict[str, Any]:
    doc = valid(**overrides)
    doc.pop(key)
    return doc


BAD_INPUTS: list[tuple[str, str | bytes, str, str]] = [
    ("missing action", json.dumps(without("action")), "action", "Field required"),
    ("missing creator_id", json.dumps(without("creator_id")), "creator_id", "Field required"),
    ("missing user_id", json.dumps(without("user_id")), "user_id", "Field required"),
    ("missing timestamp", json.dumps(without("timestamp")), "timestamp", "Field required"),
    ("wrong action", json.dumps(valid(action="delete_account")), "action", "Input should be"),
    ("action wrong type", json.dumps(valid(action=7)), "action", "Input should be"),
    ("send_message without content", json.dumps(without("message_content")), "body",
     "message_content is required when action is send_message"),
    ("send_message empty content", json.dumps(valid(message_content="")), "message_content", "at least 1"),
    ("download_media without urls", json.dumps(valid(action="download_media")), "body",
     "media_urls is required when action is download_media"),
    ("download_media empty list", json.dumps(valid(action="download_media", media_urls=[])), "media_urls",
     "at least 1"),
    ("download_media bad url", json.dumps(valid(action="download_media", media_urls=["not a url"])),
     "media_urls.0", "URL"),
    ("scrape_profile without url", json.dumps(valid(action="scrape_profile")), "body",
     "profile_url is required when action is scrape_profile"),
    ("bad timestamp", json.dumps(valid(timestamp="yesterday")), "timestamp", "datetime"),
    ("timestamp without timezone", json.dumps(valid(timestamp="2025-10-29T12:00:00")), "timestamp",
     "timezone"),
    ("creator_id wrong type", json.dumps(valid(creator_id=123)), "creator_id", "string"),
    ("creator_id empty", json.dumps(valid(creator_id="")), "creator_id", "at least 1"),
    ("creator_id with spaces", json.dumps(valid(creator_id="a b")), "creator_id", "pattern"),
    ("priority unknown", json.dumps(valid(metadata={"priority": "urgent"})), "metadata.priority",
     "Input should be"),
    ("retry_count negative", json.dumps(valid(metadata={"retry_count": -1})), "metadata.retry_count",
     "greater than or equal"),
    ("metadata wrong type", json.dumps(valid(metadata="x")), "metadata", "dictionary"),
    ("unknown field", json.dumps(valid(colour="red")), "colour", "Extra inputs"),
    ("not json", "{action: send_message", "body", "not valid JSON"),
    ("json array", json.dumps([valid()]), "body", "JSON object"),
    ("oversize body", json.dumps(valid(message_content="x" * SQS_MAX_BODY_BYTES)), "body",
     "SQS allows at most 262144"),
]


@pytest.mark.parametrize(("case", "body", "field", "fragment"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_parse_job_bad_input_names_field(case: str, body: str, field: str, fragment: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_job(body)
    fields = {p.field for p in info.value.problems}
    assert field in fields, f"{case}: expected a problem on {field!r}, got {info.value.summary()}"
    messages = " | ".join(p.message for p in info.value.problems if p.field == field)
    assert fragment.lower() in messages.lower(), f"{case}: {messages}"


def test_parse_job_valid_seed_example_parses() -> None:
    job = parse_job(json.dumps(valid()))
    assert job.action is Action.SEND_MESSAGE
    assert job.group_id == "creator_123"
    assert job.timestamp == datetime(2025, 10, 29, 12, tzinfo=UTC)


def test_check_body_size_limit_is_sqs_limit() -> None:
    job = Job.model_validate(valid(message_content="x" * 10_000))
    assert len(job.to_body()) < SQS_MAX_BODY_BYTES
    check_body_size("x" * SQS_MAX_BODY_BYTES)
    with pytest.raises(ContractError, match="262145 bytes"):
        check_body_size("x" * (SQS_MAX_BODY_BYTES + 1))


ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.", min_size=1,
              max_size=40)
aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]),
)
urls = ids.map(lambda s: f"https://media.example.test/{s}")


@st.composite
def jobs(draw: st.DrawFn) -> Job:
    action = draw(st.sampled_from(list(Action)))
    doc: dict[str, Any] = {
        "action": action,
        "creator_id": draw(ids),
        "user_id": draw(ids),
        "timestamp": draw(aware_datetimes),
        "metadata": {
            "priority": draw(st.sampled_from(["low", "normal", "high"])),
            "correlation_id": draw(st.none() | ids),
            "campaign_id": draw(st.none() | ids),
            "retry_count": draw(st.integers(0, 1000)),
        },
    }
    if action is Action.SEND_MESSAGE or draw(st.booleans()):
        doc["message_content"] = draw(st.text(min_size=1, max_size=200))
    if action is Action.DOWNLOAD_MEDIA:
        doc["media_urls"] = draw(st.lists(urls, min_size=1, max_size=5))
    if action is Action.SCRAPE_PROFILE:
        doc["profile_url"] = draw(urls)
    return Job.model_validate(doc)


@settings(max_examples=200, deadline=None)
@given(jobs())
def test_job_valid_payload_round_trips_through_json_unchanged(job: Job) -> None:
    body = job.to_body()
    again = parse_job(body)
    assert again == job
    assert again.to_body() == body


def test_identity_distinct_ingress_messages_same_tick_do_not_collide() -> None:
    doc = valid()
    doc["metadata"] = {"priority": "normal"}
    job = Job.model_validate(doc)
    a = deduplication_id(message_identity(job, "ingress-1"))
    b = deduplication_id(message_identity(job, "ingress-2"))
    assert a != b
    assert len(a) == 64


def test_identity_prefers_correlation_id_over_ingress_id() -> None:
    job = Job.model_validate(valid())
    assert message_identity(job, "ingress-1") == message_identity(job, "ingress-2") == "cid:c-1"


def test_json_schema_describes_required_fields() -> None:
    schema = json_schema("job")
    assert set(schema["required"]) >= {"action", "creator_id", "user_id", "timestamp"}
    assert schema["additionalProperties"] is False
    result = json_schema("result")
    assert "metrics" in result["required"]
    assert ScraperResultData.model_json_schema()["title"] == "ScraperResultData"
