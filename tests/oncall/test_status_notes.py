"""A hand edit the controller already corrected is a note in `huntazectl status`, never the headline over a live
cause. Staged for real: the pipeline's queues (manifests/queues.yaml) in moto over HTTP, a boto3 "console edit",
one real enforce-mode cycle of `huntazectl controller run --once` that corrects it and journals the correction,
and the gate's dead-letter shape in the ingress DLQ (a producer sending jobs without a timestamp)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from common.aws import client
from controller.cli import main as huntazectl
from controller.journal import read_file_records

from .conftest import REPO

FIFO = "huntaze-hybrid-workflows.fifo"
INGRESS_DLQ = "huntaze-rate-limiter-dlq"


def status(journal: Path) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        huntazectl(["status", "-o", "json", "--journal", str(journal)])
    data: dict[str, Any] = json.loads(out.getvalue())
    return data


def test_status_corrected_console_edit_is_a_note_below_a_filling_dlq(aws: str, redis_url: str,
                                                                      tmp_path: Path) -> None:
    queues = str(REPO / "manifests" / "queues.yaml")
    assert huntazectl(["apply", "-f", queues, "--env", "local"]) == 0
    sqs = client("sqs")
    urls = {u.rsplit("/", 1)[-1]: u for u in sqs.list_queues()["QueueUrls"]}
    sqs.set_queue_attributes(QueueUrl=urls[FIFO], Attributes={"VisibilityTimeout": "30"})  # the console edit
    journal = tmp_path / "journal.jsonl"
    with contextlib.redirect_stdout(io.StringIO()):
        assert huntazectl(["controller", "run", "-f", queues, "--env", "local", "--once",
                           "--journal-file", str(journal)]) == 0
    corrected = [r for r in read_file_records(journal) if r.type == "resource" and "corrected" in r.verdicts]
    assert [r.resource for r in corrected] == [f"Queue/{FIFO}"]
    assert sqs.get_queue_attributes(QueueUrl=urls[FIFO], AttributeNames=["VisibilityTimeout"])[
        "Attributes"]["VisibilityTimeout"] != "30"

    data = status(journal)  # the correction alone: healthy, with the note
    assert data["diagnosis"][0]["rule"] == "healthy", data["diagnosis"]
    note = data["diagnosis"][-1]
    assert (note["rule"], note["kind"]) == ("drift_corrected", "note")
    assert f"Queue/{FIFO}" in note["cause"] and "visibilityTimeout" in note["cause"]
    assert data["controller"]["resources_by_state"].get("corrected") == 1
    assert "drifted" not in data["controller"]["resources_by_state"]

    for i in range(6):  # the gate's dead letters (gate/forwarder.py): the body and its validation error
        sqs.send_message(QueueUrl=urls[INGRESS_DLQ], MessageBody=json.dumps({"action": "get_messages",
                                                                             "creator_id": f"c{i}"}),
                         MessageAttributes={"error": {"DataType": "String",
                                                      "StringValue": "timestamp: Field required"}})
    data = status(journal)
    rules = [(f["rule"], f["kind"]) for f in data["diagnosis"]]
    assert rules[0] == ("dlq_invalid_jobs", "cause"), rules
    assert rules[-1] == ("drift_corrected", "note")
    assert "spec_drifted" not in [r for r, _ in rules]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        huntazectl(["status", "--journal", str(journal)])
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("DIAGNOSIS: the DLQ is filling with invalid jobs")
    assert any(line.strip().startswith(f"note: Queue/{FIFO} was changed by hand") for line in lines)
