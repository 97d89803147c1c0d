"""Function kind against moto: CodeSha256 comparison, UpdateFunctionCode only on change, config drift, and releases
(a version published per change of code or configuration, the ``live`` alias moved by the deployment strategy).

Most tests ship a tiny package written into tmp_path; one builds the real gate zip (wheels cached in .cache).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from common import aws
from controller.kinds.registry import handler
from controller.packaging import REPO_ROOT

QUEUE_URL = "http://localhost/123456789012/huntaze-hybrid-workflows.fifo"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@pytest.fixture
def role(kit: Any) -> str:
    arn: str = aws.client("iam").create_role(RoleName="gate", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    kit.resolve("Role", "huntaze-gate", arn=arn)
    kit.resolve("Queue", "huntaze-hybrid-workflows.fifo", url=QUEUE_URL, arn="arn:aws:sqs:us-east-1:1:q")
    return arn


def _spec(package: Path, **extra: Any) -> dict[str, Any]:
    return {
        "functionName": "huntaze-rate-limiter",
        "code": {"packages": [str(package)]},
        "handler": "tinygate.handler.handler",
        "roleRef": "huntaze-gate",
        "memorySize": 256,
        "timeout": 30,
        "environment": {
            "HUNTAZE_WORKFLOWS_QUEUE_URL": {
                "valueFrom": {"queueRef": "huntaze-hybrid-workflows.fifo", "output": "url"}
            },
            "HUNTAZE_RATE_LIMITS": "global=10/60s",
        },
        "reservedConcurrency": 5,
        **extra,
    }


def test_function_create_then_read_has_no_diff(kit: Any, package: Path, role: str) -> None:
    m = kit.manifest("Function", "huntaze-rate-limiter", _spec(package))
    live = kit.reconcile(m)
    assert live.owned and live.fields["role"] == role
    assert live.fields["environment"]["HUNTAZE_WORKFLOWS_QUEUE_URL"] == QUEUE_URL
    assert live.fields["reservedConcurrency"] == 5 and live.fields["architecture"] == "arm64"
    assert not kit.delta(m).has_drift


def test_function_same_zip_makes_no_update_function_code_call(kit: Any, package: Path, role: str) -> None:
    m = kit.manifest("Function", "huntaze-rate-limiter", _spec(package))
    kit.reconcile(m)
    writes = kit.writes("lambda")
    kit.reconcile(m)
    assert writes.calls == []


def test_function_changed_source_updates_code_only(kit: Any, package: Path, role: str) -> None:
    m = kit.manifest("Function", "huntaze-rate-limiter", _spec(package))
    before = kit.reconcile(m).fields["codeSha256"]
    (package / "handler.py").write_text("def handler(event, context):\n    return {'batchItemFailures': [1]}\n")
    assert kit.delta(m).changed_fields == ["codeSha256"]
    writes = kit.writes("lambda")
    after = kit.reconcile(m).fields["codeSha256"]
    assert writes.calls == ["UpdateFunctionCode", "PublishVersion", "UpdateAlias"]
    assert after != before
    assert not kit.delta(m).has_drift


def test_function_config_changed_behind_controller_is_repaired(kit: Any, package: Path, role: str) -> None:
    m = kit.manifest("Function", "huntaze-rate-limiter", _spec(package))
    kit.reconcile(m)
    lam = aws.client("lambda")
    lam.update_function_configuration(FunctionName="huntaze-rate-limiter", Timeout=3, Environment={"Variables": {}})
    lam.delete_function_concurrency(FunctionName="huntaze-rate-limiter")
    # The alias still serves version 1 (the spec's configuration): $LATEST is what drifted.
    assert set(kit.delta(m).changed_fields) == {"timeout", "environment", "reservedConcurrency", "release"}
    writes = kit.writes("lambda")
    kit.reconcile(m)
    assert writes.calls[:2] == ["UpdateFunctionConfiguration", "PublishVersion"]
    assert writes.calls[-1] == "PutFunctionConcurrency"
    assert not kit.delta(m).has_drift


def test_function_list_owned_and_delete(kit: Any, package: Path, role: str) -> None:
    live = kit.reconcile(kit.manifest("Function", "huntaze-rate-limiter", _spec(package)))
    assert [str(o.key) for o in handler("Function").list_owned(kit.ctx)] == ["Function/huntaze-rate-limiter"]
    handler("Function").delete(live, kit.ctx)
    assert handler("Function").list_owned(kit.ctx) == []


def test_function_real_gate_zip_deploys_and_is_stable(kit: Any, role: str) -> None:
    spec = {
        "functionName": "huntaze-rate-limiter",
        "code": {"packages": ["gate", "common"], "requirements": "gate/requirements.txt"},
        "roleRef": "huntaze-gate",
        "timeout": 60,
    }
    m = kit.manifest("Function", "huntaze-rate-limiter", spec)
    live = kit.reconcile(m)
    assert live.fields["handler"] == "gate.handler.handler" and live.fields["runtime"] == "python3.12"
    assert (REPO_ROOT / "gate" / "handler.py").is_file()
    writes = kit.writes("lambda")
    kit.reconcile(m)
    assert writes.calls == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timeout": 901}, r"must be 1\.\.900"),
        ({"memorySize": 64}, r"must be 128\.\.10240"),
        ({"roleArn": "arn:aws:iam::123456789012:role/x"}, "exactly one of roleRef or roleArn"),
        ({"environment": {"AWS_REGION": "x"}}, "Lambda reserves AWS_REGION"),
    ],
)
def test_function_spec_out_of_bounds_is_rejected(change: dict[str, Any], message: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=message):
        handler("Function").spec_model.model_validate({**_spec(tmp_path), **change})


def _versions(name: str = "huntaze-rate-limiter") -> list[str]:
    found = aws.client("lambda").list_versions_by_function(FunctionName=name)["Versions"]
    return sorted(v["Version"] for v in found if v["Version"] != "$LATEST")


def _alias(name: str = "huntaze-rate-limiter") -> dict[str, Any]:
    return dict(aws.client("lambda").get_alias(FunctionName=name, Name="live"))


def test_function_first_apply_publishes_version_1_behind_the_live_alias(kit: Any, package: Path, role: str) -> None:
    live = kit.reconcile(kit.manifest("Function", "huntaze-rate-limiter", _spec(package)))
    assert _versions() == ["1"]
    alias = _alias()
    assert alias["FunctionVersion"] == "1" and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    assert live.outputs["aliasArn"] == alias["AliasArn"] and live.fields["release"] == "current"


def test_function_unchanged_second_apply_publishes_no_version(kit: Any, package: Path, role: str) -> None:
    m = kit.manifest("Function", "huntaze-rate-limiter", _spec(package))
    kit.reconcile(m)
    writes = kit.writes("lambda")
    kit.reconcile(m)
    assert writes.calls == []
    assert _versions() == ["1"]


def test_function_tags_or_concurrency_change_publishes_no_version(kit: Any, package: Path, role: str) -> None:
    kit.reconcile(kit.manifest("Function", "huntaze-rate-limiter", _spec(package)))
    changed = kit.manifest("Function", "huntaze-rate-limiter", _spec(package, reservedConcurrency=7,
                                                                     tags={"team": "gate"}))
    assert set(kit.delta(changed).changed_fields) == {"reservedConcurrency", "tags"}
    writes = kit.writes("lambda")
    kit.reconcile(changed)
    assert "PublishVersion" not in writes.calls and _versions() == ["1"]


def test_function_all_at_once_release_moves_the_alias_to_the_new_version(kit: Any, package: Path, role: str) -> None:
    m = kit.manifest("Function", "huntaze-rate-limiter", _spec(package))
    kit.reconcile(m)
    changed = kit.manifest("Function", "huntaze-rate-limiter", _spec(package, timeout=45))
    kit.reconcile(changed)
    assert _versions() == ["1", "2"]
    alias = _alias()
    assert alias["FunctionVersion"] == "2" and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    record = json.loads(alias["Description"])
    assert (record["old"], record["new"], record["state"]) == ("1", "2", "COMPLETED")
    assert not kit.delta(changed).has_drift


def test_function_canary_release_sends_the_first_step_and_records_the_shift(
    kit: Any, package: Path, role: str
) -> None:
    deployment = {"strategy": "Canary10Percent5Minutes", "alarms": ["huntaze-gate-errors"]}
    m = kit.manifest("Function", "huntaze-rate-limiter", _spec(package, deployment=deployment))
    kit.reconcile(m)
    (package / "handler.py").write_text("def handler(event, context):\n    return {'batchItemFailures': [2]}\n")
    live = kit.reconcile(m)
    alias = _alias()
    assert alias["FunctionVersion"] == "1"
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.1}
    record = json.loads(alias["Description"])
    assert record["strategy"] == "Canary10Percent5Minutes" and record["state"] == "SHIFTING"
    assert record["alarms"] == ["huntaze-gate-errors"] and record["started"].endswith("Z")
    # The shift in progress serves the new code: applying again neither publishes nor restarts it.
    assert live.fields["release"] == "current"
    writes = kit.writes("lambda")
    kit.reconcile(m)
    assert writes.calls == [] and _alias()["Description"] == alias["Description"]


def test_function_linear_release_supersedes_a_shift_in_progress(kit: Any, package: Path, role: str) -> None:
    deployment = {"strategy": "Linear10PercentEvery1Minute"}
    m = kit.manifest("Function", "huntaze-rate-limiter", _spec(package, deployment=deployment))
    kit.reconcile(m)
    kit.reconcile(kit.manifest("Function", "huntaze-rate-limiter", _spec(package, deployment=deployment, timeout=40)))
    kit.reconcile(kit.manifest("Function", "huntaze-rate-limiter", _spec(package, deployment=deployment, timeout=50)))
    alias = _alias()
    assert alias["FunctionVersion"] == "1" and alias["RoutingConfig"]["AdditionalVersionWeights"] == {"3": 0.1}


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        ({"strategy": "Canary50Percent1Minute"}, "unknown deployment strategy 'Canary50Percent1Minute': use one of"),
        ({"strategy": "AllAtOnce", "alarms": ["a", "a"]}, "each alarm once"),
        ({"alarms": [f"huntaze-gate-alarm-number-{i}" for i in range(8)]}, "cannot hold these names"),
        ({"strategy": "AllAtOnce", "rollbackOn": ["x"]}, "rollbackOn"),
    ],
)
def test_function_deployment_spec_errors_say_what_is_allowed(
    deployment: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match=message):
        handler("Function").spec_model.model_validate({**_spec(tmp_path), "deployment": deployment})


def test_function_build_gate_zip_is_the_one_apply_uploads(
    kit: Any, role: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`huntazectl build gate` reads the manifests' Function spec: its bytes are what apply uploads to Lambda."""
    from controller.cli import main
    from controller.specs import LoadOptions, load

    assert main(["build", "gate", "--env", "local", "--out", str(tmp_path)]) == 0
    printed = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    built = Path(printed["path"]).read_bytes()
    stack = load(LoadOptions([str(REPO_ROOT / "manifests"), str(REPO_ROOT / "ecs-specs")], "local",
                             {"AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID": "123456789012", "ENV": "local"}))
    [gate] = [m for m in stack.manifests if m.kind == "Function"]
    spec = gate.spec.model_dump(by_alias=True, exclude_none=True)
    spec["roleRef"] = "huntaze-gate"  # the kit resolved this role; everything about the code is the manifest's
    for name in ("huntaze-rate-limiter-queue", "huntaze-rate-limiter-dlq"):
        kit.resolve("Queue", name, url=f"http://localhost/123456789012/{name}", arn=f"arn:aws:sqs:us-east-1:1:{name}")
    m = kit.manifest("Function", gate.metadata.name, spec)
    kit.reconcile(m)
    uploaded = aws.client("lambda").get_function(FunctionName="huntaze-rate-limiter")["Configuration"]["CodeSha256"]
    assert printed["CodeSha256"] == uploaded == base64.b64encode(hashlib.sha256(built).digest()).decode()
    assert printed["size"] == str(len(built))
