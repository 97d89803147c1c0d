"""The event source mapping runner polls the source queue, invokes the function, deletes what succeeded."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

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


SLOW_HANDLER = '''
import json, os, time
def handler(event, context):
    with open(os.environ["SEEN_FILE"], "a") as fh:
        fh.write(json.dumps({"n": len(event["Records"]), "at": time.time()}) + "\\n")
    time.sleep(max(json.loads(r["body"]).get("sleep", 0) for r in event["Records"]))
    return {"batchItemFailures": []}
'''


def _manifest_queue(name: str) -> tuple[str, str]:
    """The ingress queue with the manifest's settings (manifests/queues.yaml): visibility 180 s, 5 receives."""
    _, dlq_arn = make_queue(f"{name}-dlq")
    return make_queue(name, VisibilityTimeout="180",
                      RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}))


def _slow_function(tmp_path: Path, role_arn: str, timeout_s: int) -> dict[str, object]:
    pkg = tmp_path / "pkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "slowfn_handler.py").write_text(SLOW_HANDLER)
    lam = client("lambda")
    lam.create_function(
        FunctionName="slow", Runtime="python3.12", Role=role_arn, Handler="slowfn_handler.handler",
        Code={"ZipFile": zip_of(SLOW_HANDLER)}, Timeout=timeout_s,
        Environment={"Variables": {"SEEN_FILE": str(tmp_path / "seen"), "PYTHONPATH": str(pkg)}},
    )
    return dict(lam.get_function_configuration(FunctionName="slow"))


def _invocations(tmp_path: Path) -> list[dict[str, float]]:
    seen = tmp_path / "seen"
    return [json.loads(line) for line in seen.read_text().splitlines()] if seen.exists() else []


def test_mapping_runner_batching_window_gathers_records_until_the_window_passes(
    aws: str, role_arn: str, tmp_path: Path
) -> None:
    url, arn = _manifest_queue("window")
    function = _slow_function(tmp_path, role_arn, timeout_s=30)
    mapping = client("lambda").create_event_source_mapping(
        EventSourceArn=arn, FunctionName="slow", BatchSize=10, MaximumBatchingWindowInSeconds=2)
    runner = MappingRunner(mapping, function, {"PYTHONPATH": str(tmp_path / "pkg")})  # not started: one poll
    sqs = client("sqs")

    def trickle() -> None:
        for i in range(3):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"i": i}))
            time.sleep(0.4)

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        batch = runner._gather(sqs)
    finally:
        sender.join()
        for pool in runner.pools:
            for runtime in pool.values():
                runtime.close()
    assert len(batch) == 3  # one long poll got the first; the window gathered the two that came after


def test_mapping_runner_runs_at_most_maximum_concurrency_invocations_at_once(
    aws: str, role_arn: str, tmp_path: Path
) -> None:
    url, arn = _manifest_queue("conc")
    function = _slow_function(tmp_path, role_arn, timeout_s=30)
    mapping = client("lambda").create_event_source_mapping(
        EventSourceArn=arn, FunctionName="slow", BatchSize=1, ScalingConfig={"MaximumConcurrency": 3})
    runner = MappingRunner({**mapping, "ScalingConfig": {"MaximumConcurrency": 3}}, function,
                           {"PYTHONPATH": str(tmp_path / "pkg")})
    sqs = client("sqs")
    for i in range(8):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"sleep": 1.5, "i": i}))
    runner.start()
    try:
        deadline = time.monotonic() + 90
        while len(_invocations(tmp_path)) < 8 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        runner.stop()
        runner.join(timeout=60)
    assert len(_invocations(tmp_path)) == 8
    assert runner.concurrency == 3 and 2 <= runner.most_running <= 3
    assert runner.errors == 0


@pytest.mark.soak  # about 20 s: outside the default suite's 15 min budget, run by .ci/run
def test_mapping_runner_function_timeout_fails_the_batch_and_restarts_the_runtime(
    aws: str, role_arn: str, tmp_path: Path
) -> None:
    url, arn = _manifest_queue("timeout")
    function = _slow_function(tmp_path, role_arn, timeout_s=1)
    mapping = client("lambda").create_event_source_mapping(EventSourceArn=arn, FunctionName="slow", BatchSize=10)
    runner = MappingRunner(mapping, function, {"PYTHONPATH": str(tmp_path / "pkg")})
    sqs = client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"warm": True}))  # the cold start is not timed
    runner.start()
    try:
        deadline = time.monotonic() + 90
        while runner.invocations == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        # Each poller has its own runtime, and a cold start is not counted against the timeout (as on Lambda):
        # the slow job may land on a runtime that is still cold and finish. Send slow jobs one at a time until a
        # warm runtime takes one; with `concurrency` runtimes that takes at most `concurrency` + 1 of them.
        for _ in range(runner.concurrency + 1):
            done_before = runner.invocations
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"sleep": 5}))
            deadline = time.monotonic() + 120  # its own wait: a loaded machine may be warming a runtime up
            while runner.invocations == done_before and time.monotonic() < deadline:
                time.sleep(0.1)
            if runner.errors:
                break
    finally:
        runner.stop()
        runner.join(timeout=60)
    assert runner.errors >= 1
    # The timed-out batch was not deleted: it waits out its visibility (180 s) and comes back, as on AWS.
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert int(attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"]) >= 1


VERSIONED_HANDLER = '''
import json, os
TAG = "{tag}"
def handler(event, context):
    with open(os.environ["SEEN_FILE"], "a") as fh:
        for record in event["Records"]:
            fh.write(json.dumps({{"n": json.loads(record["body"])["n"], "code": TAG,
                                  "version": context.function_version}}) + "\\n")
    return {{"batchItemFailures": []}}
'''


def _zip_files(files: dict[str, str]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buf.getvalue()


def _wait_seen(seen_file: Path, count: int, runner: MappingRunner) -> list[dict[str, object]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = seen_file.read_text().splitlines() if seen_file.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        time.sleep(0.1)
    raise AssertionError(f"{count} records not handled in 60 s; by version {runner.by_version}")


def test_mapping_runner_on_an_alias_runs_each_version_zip_in_proportion_to_the_weights(
    aws: str, role_arn: str, tmp_path: Path
) -> None:
    seen_file = tmp_path / "seen"
    lam = client("lambda")
    lam.create_function(
        FunctionName="vfn", Runtime="python3.12", Role=role_arn, Handler="vfn.handler",
        Code={"ZipFile": _zip_files({"vfn.py": VERSIONED_HANDLER.format(tag="old")})},
        Environment={"Variables": {"SEEN_FILE": str(seen_file)}}, Publish=True,
    )
    lam.update_function_code(FunctionName="vfn", ZipFile=_zip_files({"vfn.py": VERSIONED_HANDLER.format(tag="new")}))
    assert lam.publish_version(FunctionName="vfn")["Version"] == "2"
    alias = lam.create_alias(FunctionName="vfn", Name="live", FunctionVersion="1",
                             RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    url, arn = make_queue("versions", VisibilityTimeout="30")
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=alias["AliasArn"], BatchSize=1)
    assert mapping["FunctionArn"] == alias["AliasArn"]  # the emulator keeps the alias (moto pins version 1)
    # The handler module exists only in the zips: no PYTHONPATH to a package in the working tree.
    runner = MappingRunner(mapping, lam.get_function_configuration(FunctionName=alias["AliasArn"]), {},
                           poll_wait_s=1, code_cache=tmp_path / "code")
    sqs = client("sqs")
    runner.start()
    try:
        for n in range(8):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
        first = _wait_seen(seen_file, 8, runner)
        assert {(r["code"], r["version"]) for r in first} == {("old", "1"), ("new", "2")}, first
        assert 3 <= sum(r["version"] == "2" for r in first) <= 5, first  # half, to within one per poller
        lam.update_alias(FunctionName="vfn", Name="live", FunctionVersion="2",
                         RoutingConfig={"AdditionalVersionWeights": {}})
        deadline = time.monotonic() + 10
        while runner.served() != {"2": 1.0}:
            assert time.monotonic() < deadline, runner.served()
            time.sleep(0.1)
        for n in range(8, 12):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
        later = _wait_seen(seen_file, 12, runner)[8:]
        assert {(r["code"], r["version"]) for r in later} == {("new", "2")}, later
    finally:
        runner.stop()
        runner.join(timeout=30)
    assert all(set(pool) <= {"2"} for pool in runner.pools), runner.pools


def test_code_of_a_version_built_for_another_architecture_is_its_own_packages_only(
    aws: str, role_arn: str, tmp_path: Path
) -> None:
    from localplane import lambda_versions

    other = "x86_64" if lambda_versions.machine_architecture() == "arm64" else "arm64"
    files = {
        "app/__init__.py": "", "app/handler.py": "def handler(e, c):\n    return {}\n",
        "wheelpkg/__init__.py": "", "wheelpkg/_native.so": "not for this machine",
        "wheelpkg-1.0.dist-info/RECORD": "wheelpkg/__init__.py,,\nwheelpkg/_native.so,,\n",
    }
    client("lambda").create_function(FunctionName="archfn", Runtime="python3.12", Role=role_arn,
                                     Handler="app.handler.handler", Code={"ZipFile": _zip_files(files)},
                                     Architectures=[other], Publish=True)
    code, config = lambda_versions.code_dir(client("lambda"), "archfn", "1", tmp_path / "cache")
    assert config["Version"] == "1"
    assert sorted(p.name for p in code.iterdir()) == ["app"]
    assert (code / "app" / "handler.py").is_file()


def test_a_versions_zip_wins_over_a_module_of_the_same_name_in_the_working_directory(
    aws: str, role_arn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plane runs from the checkout, which holds the gate too: the version's own code must still run."""
    seen_file = tmp_path / "seen"
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "wfn.py").write_text(VERSIONED_HANDLER.format(tag="checkout"))
    monkeypatch.chdir(checkout)
    lam = client("lambda")
    lam.create_function(
        FunctionName="wfn", Runtime="python3.12", Role=role_arn, Handler="wfn.handler",
        Code={"ZipFile": _zip_files({"wfn.py": VERSIONED_HANDLER.format(tag="zip")})},
        Environment={"Variables": {"SEEN_FILE": str(seen_file)}}, Publish=True,
    )
    alias = lam.create_alias(FunctionName="wfn", Name="live", FunctionVersion="1")
    url, arn = make_queue("shadowed", VisibilityTimeout="30")
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=alias["AliasArn"], BatchSize=1)
    runner = MappingRunner(mapping, lam.get_function_configuration(FunctionName=alias["AliasArn"]), {},
                           poll_wait_s=1, code_cache=tmp_path / "code")
    runner.start()
    try:
        client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps({"n": 0}))
        [seen] = _wait_seen(seen_file, 1, runner)
    finally:
        runner.stop()
        runner.join(timeout=30)
    assert seen["code"] == "zip", seen
