"""EventSourceMapping kind against moto: found by (function, source ARN), batching settings, drift repair."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from common import aws
from controller.kinds.registry import handler

TRUST = {"Version": "2012-10-17", "Statement": []}
SPEC: dict[str, Any] = {
    "functionRef": "huntaze-rate-limiter",
    "queueRef": "huntaze-rate-limiter-queue",
    "batchSize": 10,
    "maximumBatchingWindowInSeconds": 5,
    "functionResponseTypes": ["ReportBatchItemFailures"],
    "maximumConcurrency": 5,
}


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("h.py", "def handler(e, c):\n    return {}\n")
    return buf.getvalue()


@pytest.fixture
def wiring(kit: Any) -> dict[str, str]:
    """A function and two queues, resolved as if reconciled earlier in the run."""
    role = aws.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    function = aws.client("lambda").create_function(
        FunctionName="huntaze-rate-limiter",
        Runtime="python3.12",
        Role=role,
        Handler="h.handler",
        Code={"ZipFile": _zip()},
        Publish=True,
    )["FunctionArn"]
    alias = aws.client("lambda").create_alias(FunctionName="huntaze-rate-limiter", Name="live", FunctionVersion="1")
    kit.resolve("Function", "huntaze-rate-limiter", arn=function, aliasArn=alias["AliasArn"])
    arns = {"function": function, "alias": alias["AliasArn"]}
    for name in ("huntaze-rate-limiter-queue", "other-queue"):
        url = aws.client("sqs").create_queue(QueueName=name)["QueueUrl"]
        arn = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        kit.resolve("Queue", name, arn=arn, url=url)
        arns[name] = arn
    return arns


def test_mapping_create_then_read_has_no_diff(kit: Any, wiring: dict[str, str]) -> None:
    m = kit.manifest("EventSourceMapping", "gate-trigger", SPEC)
    live = kit.reconcile(m)
    assert live.owned and live.fields["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert not kit.delta(m).has_drift
    writes = kit.writes("lambda")
    kit.reconcile(m)
    assert writes.calls == []


def test_mapping_is_found_by_function_and_source_arn(kit: Any, wiring: dict[str, str]) -> None:
    # Someone else's mapping of the same function on another queue must not be mistaken for ours.
    other = aws.client("lambda").create_event_source_mapping(
        FunctionName=wiring["function"], EventSourceArn=wiring["other-queue"], BatchSize=1
    )
    m = kit.manifest("EventSourceMapping", "gate-trigger", SPEC)
    assert handler("EventSourceMapping").read(m, kit.ctx) is None
    live = kit.reconcile(m)
    assert live.outputs["uuid"] != other["UUID"]
    again = handler("EventSourceMapping").read(m, kit.ctx)
    assert again is not None and again.outputs["uuid"] == live.outputs["uuid"]
    assert again.fields["eventSourceArn"] == wiring["huntaze-rate-limiter-queue"]


def test_mapping_changed_behind_controller_is_repaired(kit: Any, wiring: dict[str, str]) -> None:
    m = kit.manifest("EventSourceMapping", "gate-trigger", SPEC)
    live = kit.reconcile(m)
    aws.client("lambda").update_event_source_mapping(
        UUID=live.outputs["uuid"],
        BatchSize=1,
        FunctionResponseTypes=[],
        ScalingConfig={"MaximumConcurrency": 2},
    )
    assert set(kit.delta(m).changed_fields) == {"batchSize", "functionResponseTypes", "maximumConcurrency"}
    writes = kit.writes("lambda")
    kit.reconcile(m)
    assert writes.calls == ["UpdateEventSourceMapping"]
    assert not kit.delta(m).has_drift


def test_mapping_concurrency_limit_removed_from_spec_is_removed_live(kit: Any, wiring: dict[str, str]) -> None:
    kit.reconcile(kit.manifest("EventSourceMapping", "gate-trigger", SPEC))
    unlimited = kit.manifest("EventSourceMapping", "gate-trigger", {**SPEC, "maximumConcurrency": None})
    assert kit.delta(unlimited).changed_fields == ["maximumConcurrency"]
    kit.reconcile(unlimited)
    assert not kit.delta(unlimited).has_drift


def test_mapping_list_owned_skips_foreign_mappings_and_delete(kit: Any, wiring: dict[str, str]) -> None:
    aws.client("lambda").create_event_source_mapping(
        FunctionName=wiring["function"], EventSourceArn=wiring["other-queue"], BatchSize=1
    )
    live = kit.reconcile(kit.manifest("EventSourceMapping", "gate-trigger", SPEC))
    owned = handler("EventSourceMapping").list_owned(kit.ctx)
    assert [str(o.key) for o in owned] == ["EventSourceMapping/gate-trigger"]
    handler("EventSourceMapping").delete(live, kit.ctx)
    assert handler("EventSourceMapping").list_owned(kit.ctx) == []


def test_mapping_spec_large_batch_without_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="maximumBatchingWindowInSeconds of at least 1"):
        handler("EventSourceMapping").spec_model.model_validate(
            {**SPEC, "batchSize": 100, "maximumBatchingWindowInSeconds": 0}
        )


def test_mapping_points_at_the_live_alias_and_is_still_found_after_a_release(
    kit: Any, wiring: dict[str, str]
) -> None:
    m = kit.manifest("EventSourceMapping", "gate-trigger", SPEC)
    live = kit.reconcile(m)
    assert live.fields["functionArn"] == wiring["alias"] and live.fields["functionArn"].endswith(":live")
    lam = aws.client("lambda")
    lam.update_function_configuration(FunctionName="huntaze-rate-limiter", Timeout=9)
    lam.publish_version(FunctionName="huntaze-rate-limiter")
    lam.update_alias(FunctionName="huntaze-rate-limiter", Name="live", FunctionVersion="2")
    again = handler("EventSourceMapping").read(m, kit.ctx)
    assert again is not None and again.outputs["uuid"] == live.outputs["uuid"]
    assert again.fields["functionArn"] == wiring["alias"]
    assert not kit.delta(m).has_drift


def test_mapping_on_the_unqualified_function_needs_replacing_onto_the_alias(
    kit: Any, wiring: dict[str, str]
) -> None:
    old = aws.client("lambda").create_event_source_mapping(
        FunctionName=wiring["function"], EventSourceArn=wiring["huntaze-rate-limiter-queue"], BatchSize=10
    )
    m = kit.manifest("EventSourceMapping", "gate-trigger", SPEC)
    found = handler("EventSourceMapping").read(m, kit.ctx)
    assert found is not None and found.outputs["uuid"] == old["UUID"]
    assert found.fields["functionArn"] == wiring["function"]  # the diff: an immutable field changed, a replacement
    assert handler("EventSourceMapping").desired(m, kit.ctx)["functionArn"] == wiring["alias"]
