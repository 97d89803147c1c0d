"""`huntazectl dlq list|show|redrive` against the pipeline's real queue specs (manifests/queues.yaml) in moto.

Dead letters carry the shapes their producers write (gate/forwarder.py: ``error`` + ``origin_message_id``;
scraper/consumer.py: ``error``, ``error_type``, ``origin_message_id``, ``receive_count``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from common.aws import client
from common.contract import parse_job
from common.identity import message_identity
from controller.cli import main as huntazectl

from .conftest import REPO

INGRESS_DLQ = "huntaze-rate-limiter-dlq"
FIFO_DLQ = "huntaze-hybrid-workflows-dlq.fifo"


@pytest.fixture
def queues(aws: str) -> dict[str, str]:
    assert huntazectl(["apply", "-f", str(REPO / "manifests" / "queues.yaml"), "--env", "local"]) == 0
    sqs = client("sqs")
    return {u.rsplit("/", 1)[-1]: u for u in sqs.list_queues()["QueueUrls"]}


def job(creator: str, n: int, **extra: Any) -> str:
    doc = {"action": "send_message", "creator_id": creator, "user_id": "fan_1", "message_content": f"hi {n}",
           "timestamp": "2026-12-01T03:00:00+00:00", **extra}
    return json.dumps(doc)


def s(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def gate_dead_letter(url: str, body: str, origin: str, error: str) -> None:
    client("sqs").send_message(QueueUrl=url, MessageBody=body,
                               MessageAttributes={"error": s(error), "origin_message_id": s(origin)})


def scraper_dead_letter(url: str, body: str, origin: str, error: str, error_type: str, group: str) -> None:
    client("sqs").send_message(
        QueueUrl=url, MessageBody=body, MessageGroupId=group,
        MessageDeduplicationId=hashlib.sha256(f"dlq:{origin}".encode()).hexdigest(),
        MessageAttributes={"error": s(error), "error_type": s(error_type), "origin_message_id": s(origin),
                           "receive_count": {"DataType": "Number", "StringValue": "3"},
                           "gate_deferrals": {"DataType": "Number", "StringValue": "2"}},
    )


def depth(url: str) -> tuple[int, int]:
    attrs = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = huntazectl(["dlq", *argv, "-o", "json"])
    return code, json.loads(capsys.readouterr().out)


def stage(queues: dict[str, str]) -> None:
    bad = json.dumps({"action": "send_message", "creator_id": "bad creator!", "user_id": "u"})
    for i in range(4):
        gate_dead_letter(queues[INGRESS_DLQ], bad, f"in-{i}", "creator_id: String should match pattern; "
                         "timestamp: Field required")
    for i in range(3):
        scraper_dead_letter(queues[FIFO_DLQ], job("creator_a", i), f"wf-a{i}", "HTTP 503 from the platform",
                            "network", "creator_a")
    scraper_dead_letter(queues[FIFO_DLQ], job("creator_b", 9), "wf-b9", "login refused", "auth", "creator_b")


def test_dlq_list_groups_by_reason_creator_action_and_gives_every_message_back(
    queues: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    stage(queues)
    code, data = run_json(capsys, "list")
    assert code == 0
    assert data["total"] == 8 and data["unread"] == {}
    by = {(g["dlq"], g["error_type"], g["creator"]): g for g in data["groups"]}
    assert by[(INGRESS_DLQ, "validation", "bad creator!")]["count"] == 4
    assert by[(INGRESS_DLQ, "validation", "bad creator!")]["valid_today"] == 0
    assert by[(FIFO_DLQ, "network", "creator_a")]["count"] == 3
    assert by[(FIFO_DLQ, "auth", "creator_b")]["action"] == "send_message"
    assert by[(FIFO_DLQ, "network", "creator_a")]["oldest"] is not None
    classes = {(c["dlq"], c["error_type"]): c for c in data["by_class"]}
    assert {k: c["count"] for k, c in classes.items()} == {
        (INGRESS_DLQ, "validation"): 4, (FIFO_DLQ, "network"): 3, (FIFO_DLQ, "auth"): 1}
    assert data["by_class"][0]["error_type"] == "validation"  # largest class first
    assert classes[(FIFO_DLQ, "network")]["top_reason"] == "HTTP 503 from the platform"
    assert classes[(FIFO_DLQ, "network")]["creators"] == 1
    capsys.readouterr()
    assert huntazectl(["dlq", "list"]) == 0
    table = capsys.readouterr().out
    assert "By failure class" in table and "network" in table.split("By failure class")[1]
    assert depth(queues[INGRESS_DLQ]) == (4, 0)  # all visible again: nothing hidden behind a hold
    assert depth(queues[FIFO_DLQ]) == (4, 0)
    code, again = run_json(capsys, "list")  # and readable again at once, by the next person
    assert again["total"] == 8


def test_dlq_list_reports_what_a_fifo_group_hides_instead_of_leaving_it_out(
    queues: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(13):
        scraper_dead_letter(queues[FIFO_DLQ], job("creator_a", i), f"o{i}", "HTTP 503", "network", "creator_a")
    _, data = run_json(capsys, "list", "--queue", "workflows")
    read = data["total"]
    assert read + sum(data["unread"].values()) == 13
    assert depth(queues[FIFO_DLQ]) == (13, 0)


def test_dlq_show_prints_attributes_and_job_history(queues: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    stage(queues)
    _, listing = run_json(capsys, "redrive", "--dry-run", "--creator", "creator_b")
    message_id = listing["message_ids"][0]
    code, view = run_json(capsys, "show", message_id)
    assert code == 0
    assert view["error"] == "login refused" and view["reason"] == "auth"
    assert view["history"]["gate_deferrals"] == 2
    assert view["history"]["receives_before_dead_letter"] == 3
    assert view["history"]["identity"] == "sqs:wf-b9"
    assert view["redrive_to"] == "huntaze-hybrid-workflows.fifo"
    assert depth(queues[FIFO_DLQ]) == (4, 0)
    assert huntazectl(["dlq", "show", "no-such-id"]) == 1


def test_dlq_redrive_sends_valid_jobs_back_with_identity_and_refuses_invalid_ones(
    queues: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    stage(queues)
    code, dry = run_json(capsys, "redrive", "--dry-run")
    assert code == 0 and dry["redriven"] == 4 and dry["skipped"] == 4
    assert depth(queues[FIFO_DLQ]) == (4, 0) and depth(queues["huntaze-hybrid-workflows.fifo"]) == (0, 0)

    code, report = run_json(capsys, "redrive", "--reason", "network", "--limit", "2")
    assert code == 0 and report["redriven"] == 2
    assert report["skipped_by_reason"] == {"over --limit": 1}
    code, report = run_json(capsys, "redrive")
    assert report["redriven"] == 2  # the third network job and the auth job
    reasons = report["skipped_by_reason"]
    assert list(reasons) == ["still invalid under today's contract (creator_id, timestamp)"]
    assert reasons["still invalid under today's contract (creator_id, timestamp)"] == 4
    assert depth(queues[FIFO_DLQ]) == (0, 0)
    assert depth(queues[INGRESS_DLQ]) == (4, 0)  # refused jobs stay, visible

    sqs = client("sqs")
    got = sqs.receive_message(QueueUrl=queues["huntaze-hybrid-workflows.fifo"], MaxNumberOfMessages=10,
                              MessageAttributeNames=["All"], AttributeNames=["All"])["Messages"]
    identities = set()
    for m in got:
        attrs = {k: v["StringValue"] for k, v in m["MessageAttributes"].items()}
        assert "error" not in attrs and attrs["redrive_count"] == "1"
        identities.add(message_identity(parse_job(m["Body"]), attrs["origin_message_id"]))
        assert m["Attributes"]["MessageGroupId"] == parse_job(m["Body"]).creator_id
    assert identities == {"sqs:wf-a0", "sqs:wf-a1", "sqs:wf-a2", "sqs:wf-b9"}


def test_dlq_commands_without_a_stack_say_what_to_check(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert huntazectl(["dlq", "list"]) == 2
    assert "AWS_ENDPOINT_URL" in capsys.readouterr().err


def test_dlq_module_imports_stay_light() -> None:
    import subprocess
    import sys

    code = ("import sys, controller.commands.dlq, controller.commands.status; "
            "heavy = [m for m in ('boto3', 'rich', 'controller.kinds', 'redis') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(REPO)).stdout.strip()
    assert out == "[]"
