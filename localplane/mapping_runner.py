"""Runs an SQS event source mapping locally: poll the source queue, invoke the function, delete what succeeded.

Moto stores event source mappings but never runs them, so `localplane.plane` starts one `MappingRunner` per
enabled mapping. It behaves like Lambda's SQS poller:

- ``ScalingConfig.MaximumConcurrency`` pollers (Lambda's minimum, 2, when unset), each with its own warm runtime
  process, so at most that many invocations run at once;
- each poller long-polls 20 s (``WaitTimeSeconds=20``, as Lambda does); with ``MaximumBatchingWindowInSeconds``
  it keeps gathering until BatchSize records or the window has passed since the first one;
- it builds the Lambda SQS event and invokes the function; an invocation that outlives the function's
  ``Timeout`` is killed (the runtime restarts), and the batch fails as a whole, as on AWS;
- it deletes every record not named in ``batchItemFailures`` (ReportBatchItemFailures). A handler error or a
  timeout leaves the whole batch to reappear after its visibility timeout.

On `stop()`, a poller that still holds received messages releases them (visibility 0) rather than invoke.

Versions: a mapping on an alias (the gate's ``function:NAME:live``) invokes, for each batch, one of the versions
the alias points at, in proportion to its weights (`localplane.lambda_versions`; the alias is read again at most
once a second, so a release or a rollback reaches the next batches), and runs that version's own code, downloaded
from GetFunction's Code.Location, with that version's environment; each poller keeps one warm runtime per version.
A mapping on the function itself runs ``$LATEST`` from the working tree, as before. ``by_version`` counts the
invocations of each version.
"""

from __future__ import annotations

import json
import logging
import math
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from common.aws import client
from localplane import lambda_versions

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

    def __init__(self, function: dict[str, Any], extra_env: dict[str, str], log_file: IO[bytes] | None,
                 code: Path | None = None) -> None:
        """``code``: the unpacked code of the version ``function`` describes, first on the path (None: the
        working tree)."""
        env = {**os.environ, **function.get("Environment", {}).get("Variables", {}), **extra_env}
        paths = (str(code) if code else "", str(REPO_ROOT), env.get("PYTHONPATH", ""))
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        env["AWS_LAMBDA_FUNCTION_NAME"] = function["FunctionName"]
        env["AWS_LAMBDA_FUNCTION_VERSION"] = str(function.get("Version") or lambda_versions.LATEST)
        self.timeout_s = float(function.get("Timeout", 3))
        argv = [
            # -P: `-m` would put the working directory (the checkout, when run from it) ahead of PYTHONPATH, and the
            # checkout's `gate` would shadow the version's own code.
            sys.executable, "-P", "-m", "localplane.lambda_runtime", "--handler", function["Handler"],
            "--function-name", function["FunctionName"], "--function-arn", function["FunctionArn"],
            "--memory", str(function.get("MemorySize", 128)), "--timeout", str(function.get("Timeout", 3)),
            "--function-version", env["AWS_LAMBDA_FUNCTION_VERSION"],
        ]
        self._argv, self._env, self._log_file = argv, env, log_file
        self.proc = self._spawn()
        self.lock = threading.Lock()
        self.ready = False  # the first reply proves the runtime imported the handler (cold start)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(event) + "\n")
            self.proc.stdin.flush()
            # The function timeout runs from the invocation; a cold start (imports) is not counted against it.
            limit = self.timeout_s if self.ready else self.timeout_s + 60
            readable, _, _ = select.select([self.proc.stdout], [], [], limit)
            if not readable:
                self._restart()
                return {"ok": False, "error": f"Task timed out after {self.timeout_s:.2f} seconds"}
            line = self.proc.stdout.readline()
        if not line:
            return {"ok": False, "error": f"runtime exited with code {self.proc.poll()}"}
        self.ready = True
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _spawn(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log_file or subprocess.DEVNULL,
            env=self._env, text=True, bufsize=1,
        )

    def _restart(self) -> None:
        """Lambda ends a timed-out invocation and its environment: kill the runtime and start a fresh one."""
        self.proc.kill()
        self.proc.wait()
        self.proc = self._spawn()
        self.ready = False

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


LAMBDA_LONG_POLL_S = 20
LAMBDA_MIN_CONCURRENCY = 2
WEIGHTS_REFRESH_S = 1.0


class MappingRunner(threading.Thread):
    """Polls one mapping's source queue with `concurrency` pollers until `stop()`."""

    def __init__(
        self, mapping: dict[str, Any], function: dict[str, Any], extra_env: dict[str, str],
        log_file: IO[bytes] | None = None, poll_wait_s: int = LAMBDA_LONG_POLL_S, *, recorder: Any = None,
        code_cache: Path | None = None,
    ) -> None:
        super().__init__(name=f"mapping-{function['FunctionName']}", daemon=True)
        self.mapping = mapping
        self.function_arn = str(mapping["FunctionArn"])
        self.versioned = lambda_versions.split_arn(self.function_arn)[1] not in (None, lambda_versions.LATEST)
        self._extra_env, self._log_file = extra_env, log_file
        self._own_cache = code_cache is None  # made on first use, removed when the runner ends
        self.code_cache = code_cache
        self._weights: dict[str, float] = {}
        self._weights_read = -math.inf
        self._weights_lock = threading.Lock()
        self.by_version: dict[str, int] = {}
        self.source_arn = str(mapping["EventSourceArn"])
        self.batch_size = min(int(mapping.get("BatchSize", 10)), 10)
        self.batching_window_s = float(mapping.get("MaximumBatchingWindowInSeconds") or 0)
        scaling = mapping.get("ScalingConfig") or {}
        self.concurrency = max(LAMBDA_MIN_CONCURRENCY, int(scaling.get("MaximumConcurrency") or 0))
        self.poll_wait_s = poll_wait_s
        # One pool of warm runtimes (version -> process) per poller. $LATEST's starts now; versions on first use.
        self.pools: list[dict[str, FunctionProcess]] = [
            {} if self.versioned else {lambda_versions.LATEST: FunctionProcess(function, extra_env, log_file)}
            for _ in range(self.concurrency)]
        self._timeout_s = float(function.get("Timeout", 3))
        self.region = self.source_arn.split(":")[3]
        self.queue_url = queue_url_from_arn(self.source_arn)
        self.report_failures = "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", [])
        self._halt = threading.Event()
        self._count_lock = threading.Lock()
        self.invocations = 0
        self.errors = 0
        self.running = 0  # invocations in progress now
        self.most_running = 0  # the most ever in progress at once (never above `concurrency`)
        # Anything with record(function_name, duration_ms, error=bool): localplane.metrics.LambdaRecorder.
        self.recorder = recorder
        self.function_name = str(function["FunctionName"])

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        pollers = [threading.Thread(target=self._poll, args=(pool,), daemon=True, name=f"{self.name}-{i}")
                   for i, pool in enumerate(self.pools)]
        for poller in pollers:
            poller.start()
        self._halt.wait()
        for poller in pollers:
            poller.join(timeout=self.poll_wait_s + self._timeout_s + 5)
        for pool in self.pools:
            for runtime in pool.values():
                runtime.close()
        if self._own_cache and self.code_cache is not None:
            shutil.rmtree(self.code_cache, ignore_errors=True)

    def served(self) -> dict[str, float]:
        """The versions the mapping's function ARN serves now, with their weights (read at most once a second)."""
        if not self.versioned:
            return {lambda_versions.LATEST: 1.0}
        with self._weights_lock:
            if time.monotonic() - self._weights_read >= WEIGHTS_REFRESH_S:
                weights = lambda_versions.served_versions(client("lambda"), self.function_arn)
                if weights != self._weights:
                    log.info("%s serves %s", self.function_arn,
                             ", ".join(f"version {v} {w:.0%}" for v, w in weights.items()))
                self._weights, self._weights_read = weights, time.monotonic()
            return dict(self._weights)

    def _runtime(self, pool: dict[str, FunctionProcess], picker: lambda_versions.WeightedPicker) -> tuple[
            str, FunctionProcess]:
        """The warm runtime of the version this invocation goes to (started, with that version's code, if new);
        runtimes of versions the alias no longer serves are closed."""
        weights = self.served()
        version = picker.pick(weights)
        for gone in [v for v in pool if v not in weights]:
            pool.pop(gone).close()
        if version not in pool:
            function, _ = lambda_versions.split_arn(self.function_arn)
            with self._weights_lock:
                if self.code_cache is None:
                    self.code_cache = Path(tempfile.mkdtemp(prefix="huntaze-lambda-code-"))
            code, config = lambda_versions.code_dir(client("lambda"), function, version, self.code_cache)
            log.info("starting a runtime for %s version %s (code %s, CodeSha256 %s)", function, version, code,
                     config.get("CodeSha256"))
            pool[version] = FunctionProcess(config, self._extra_env, self._log_file, code)
        return version, pool[version]

    def _poll(self, pool: dict[str, FunctionProcess]) -> None:
        sqs = client("sqs")
        picker = lambda_versions.WeightedPicker()
        while not self._halt.is_set():
            try:
                messages = self._gather(sqs)
            except Exception:  # keep polling through transient endpoint errors, as Lambda does
                log.exception("poll of %s failed", self.queue_url)
                self._halt.wait(1)
                continue
            if messages and self._halt.is_set():
                self._release(sqs, messages)
            elif messages:
                try:
                    version, runtime = self._runtime(pool, picker)
                except Exception:  # the alias or the code cannot be read now: the batch comes back, as on AWS
                    log.exception("cannot resolve the version of %s to invoke", self.function_arn)
                    self._release(sqs, messages)
                    self._halt.wait(1)
                    continue
                with self._count_lock:
                    self.by_version[version] = self.by_version.get(version, 0) + 1
                self._invoke(sqs, runtime, messages)

    def _receive(self, sqs: Any, count: int, wait_s: int) -> list[dict[str, Any]]:
        got = sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=count, WaitTimeSeconds=wait_s,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        )
        return list(got.get("Messages", []))

    def _gather(self, sqs: Any) -> list[dict[str, Any]]:
        """One batch: a long poll, then (batching window) more until BatchSize or the window has passed."""
        messages = self._receive(sqs, self.batch_size, self.poll_wait_s)
        if not messages or self.batching_window_s <= 0:
            return messages
        window_ends = time.monotonic() + self.batching_window_s
        while len(messages) < self.batch_size and not self._halt.is_set():
            left = window_ends - time.monotonic()
            if left <= 0:
                break
            messages += self._receive(sqs, self.batch_size - len(messages), min(20, math.ceil(left)))
        return messages

    def _release(self, sqs: Any, messages: list[dict[str, Any]]) -> None:
        sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages)])

    def _invoke(self, sqs: Any, runtime: FunctionProcess, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [lambda_record(m, self.source_arn, self.region) for m in messages]}
        started = time.monotonic()
        with self._count_lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            reply = runtime.invoke(event)
        finally:
            with self._count_lock:
                self.running -= 1
                self.invocations += 1
        if self.recorder is not None:
            self.recorder.record(self.function_name, (time.monotonic() - started) * 1000, error=not reply.get("ok"))
        if not reply.get("ok"):
            with self._count_lock:
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
