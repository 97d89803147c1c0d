"""Runs an SQS event source mapping locally: poll the source queue, invoke the function, delete what succeeded.

Moto stores event source mappings but never runs them, so `localplane.plane` starts one `MappingRunner` per
enabled mapping. It behaves like Lambda's SQS poller: receive up to BatchSize messages (waiting at most the
batching window), build the Lambda SQS event, invoke the function in its local runtime process, and delete every
record not named in ``batchItemFailures`` (ReportBatchItemFailures). A handler error leaves the whole batch to
reappear after its visibility timeout, as on AWS.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from common.aws import client

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parent.parent


def queue_url_from_arn(arn: str) -> str:
    name = arn.rsplit(":", 1)[-1]
    return str(client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def lambda_record(message: dict[str, Any], source_arn: str, region: str) -> dict[str, Any]:
    """One SQS message as Lambda delivers it (lower-camel attribute shapes)."""
    attrs = {}
    for name, value in message.get("MessageAttributes", {}).items():
        attrs[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attrs,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": source_arn,
        "awsRegion": region,
    }


class FunctionProcess:
    """A warm local runtime for one function (see `localplane.lambda_runtime`)."""

    def __init__(self, function: dict[str, Any], extra_env: dict[str, str], log_file: IO[bytes] | None) -> None:
        env = {**os.environ, **function.get("Environment", {}).get("Variables", {}), **extra_env}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env["AWS_LAMBDA_FUNCTION_NAME"] = function["FunctionName"]
        argv = [
            sys.executable, "-m", "localplane.lambda_runtime", "--handler", function["Handler"],
            "--function-name", function["FunctionName"], "--function-arn", function["FunctionArn"],
            "--memory", str(function.get("MemorySize", 128)), "--timeout", str(function.get("Timeout", 3)),
        ]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file or subprocess.DEVNULL,
            env=env, text=True, bufsize=1,
        )
        self.lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(event) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            return {"ok": False, "error": f"runtime exited with code {self.proc.poll()}"}
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class MappingRunner(threading.Thread):
    """Polls one mapping's source queue until `stop()`."""

    def __init__(
        self, mapping: dict[str, Any], function: dict[str, Any], extra_env: dict[str, str],
        log_file: IO[bytes] | None = None, poll_wait_s: int = 1,
    ) -> None:
        super().__init__(name=f"mapping-{function['FunctionName']}", daemon=True)
        self.mapping = mapping
        self.source_arn = str(mapping["EventSourceArn"])
        self.batch_size = min(int(mapping.get("BatchSize", 10)), 10)
        self.poll_wait_s = poll_wait_s
        self.runtime = FunctionProcess(function, extra_env, log_file)
        self.region = self.source_arn.split(":")[3]
        self.queue_url = queue_url_from_arn(self.source_arn)
        self.report_failures = "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", [])
        self._halt = threading.Event()
        self.invocations = 0
        self.errors = 0

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        sqs = client("sqs")
        while not self._halt.is_set():
            try:
                got = sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
                    WaitTimeSeconds=self.poll_wait_s, AttributeNames=["All"], MessageAttributeNames=["All"],
                )
            except Exception:  # keep polling through transient endpoint errors, as Lambda does
                log.exception("poll of %s failed", self.queue_url)
                self._halt.wait(1)
                continue
            messages = got.get("Messages", [])
            if messages:
                self._invoke(sqs, messages)
        self.runtime.close()

    def _invoke(self, sqs: Any, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [lambda_record(m, self.source_arn, self.region) for m in messages]}
        reply = self.runtime.invoke(event)
        self.invocations += 1
        if not reply.get("ok"):
            self.errors += 1
            log.error("function failed; the batch will be retried: %s", reply.get("error"))
            return
        failed: set[str] = set()
        if self.report_failures:
            result = reply.get("result") or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
