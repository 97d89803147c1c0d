"""The event source mapping runner polls the source queue, invokes the function, deletes what succeeded."""

from __future__ import annotations

import json
import time
from pathlib import Path

from common.aws import client
from localplane.mapping_runner import MappingRunner, lambda_record

from .conftest import make_queue, zip_of

HANDLER_MODULE = '''
import json, os
def handler(event, context):
    failures = []
    for record in event["Records"]:
        if json.loads(record["body"]).get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
    print("this goes to the function log, not the reply channel")
    with open(os.environ["SEEN_FILE"], "a") as fh:
        for record in event["Records"]:
            fh.write(record["body"] + "\\n")
    return {"batchItemFailures": failures}
'''


def test_mapping_runner_deletes_succeeded_records_and_keeps_failures(
    aws: str, role_arn: str, tmp_path: Path, monkeypatch: object
) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "localfn_handler.py").write_text(HANDLER_MODULE)
    url, arn = make_queue("src", VisibilityTimeout="30")
    lam = client("lambda")
    fn = lam.create_function(
        FunctionName="fn", Runtime="python3.12", Role=role_arn, Handler="localfn_handler.handler",
        Code={"ZipFile": zip_of(HANDLER_MODULE)}, Environment={"Variables": {"SEEN_FILE": str(tmp_path / "seen")}},
    )
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="fn", BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"]
    )
    sqs = client("sqs")
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": i, "fail": i == 3}),
                         MessageAttributes={"origin_message_id": {"DataType": "String", "StringValue": f"o{i}"}})
    fn_conf = lam.get_function_configuration(FunctionName="fn")
    assert fn_conf["FunctionArn"] == fn["FunctionArn"]
    runner = MappingRunner(mapping, fn_conf, {"PYTHONPATH": str(pkg)})
    runner.start()
    try:
        deadline = time.monotonic() + 30
        seen: list[str] = []
        while time.monotonic() < deadline:
            seen_file = tmp_path / "seen"
            seen = seen_file.read_text().splitlines() if seen_file.exists() else []
            if len(seen) >= 5:
                break
            time.sleep(0.2)
    finally:
        runner.stop()
        runner.join(timeout=30)
    assert sorted(json.loads(s)["n"] for s in seen[:5]) == [0, 1, 2, 3, 4]
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    # only the reported failure is left, in flight until its visibility timeout ends
    assert int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 1
    assert runner.invocations >= 1
    assert runner.errors == 0


def test_lambda_record_has_lambda_event_shape() -> None:
    message = {
        "MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}", "MD5OfBody": "x",
        "Attributes": {"ApproximateReceiveCount": "2"},
        "MessageAttributes": {"gate_deferrals": {"DataType": "Number", "StringValue": "1"}},
    }
    record = lambda_record(message, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
    assert record["messageId"] == "m1"
    assert record["eventSource"] == "aws:sqs"
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert record["messageAttributes"]["gate_deferrals"] == {
        "stringValue": "1", "binaryValue": None, "stringListValues": [], "binaryListValues": [], "dataType": "Number"
    }
