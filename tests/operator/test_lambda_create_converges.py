"""The Lambda create path under the requeue model: CreateFunction succeeds, then waiting for the function to
settle times out (AWS keeps it Pending longer than the wait). Before, the reconciler retried the whole create
verb: CreateFunction again -> ResourceConflictException -> retried as "temporary" -> reported failed. Now the
timeout is a temporary error for that resource; the next attempt reads, finds the function, diffs and updates
only what the aborted create left undone (the release behind the live alias, reserved concurrency). One
CreateFunction, no conflict, converged."""

from __future__ import annotations

from pathlib import Path

import pytest

import controller.kinds.function as function_kind
from common.aws import clear_client_cache, client
from controller.calls import CallGate
from controller.kinds.base import Context
from controller.reconciler import Action, ApplyOptions, Reconciler
from controller.specs import LoadOptions, load
from tests.operator.aws_proxy import AwsProxy, Fault

SPECS = """\
apiVersion: huntaze.io/v1
kind: Role
metadata: {name: op-gate-role}
spec:
  trustedServices: [lambda.amazonaws.com]
---
apiVersion: huntaze.io/v1
kind: Function
metadata: {name: op-gate}
spec:
  code: {packages: [PACKAGE]}
  handler: tinygate.handler.handler
  roleRef: op-gate-role
  reservedConcurrency: 3
"""


def test_lambda_create_that_times_out_settling_is_read_again_and_converges_without_a_second_create(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "tinygate"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "handler.py").write_text("def handler(event, context):\n    return {}\n")
    (tmp_path / "specs.yaml").write_text(SPECS.replace("PACKAGE", str(package)))
    stack = load(LoadOptions([str(tmp_path / "specs.yaml")], "local",
                             {"ENV": "local", "AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID": "123456789012"}))
    # AWS keeps the new function Pending longer than the controller waits (here: 2 s instead of 300 s).
    proxy = AwsProxy(aws).start()
    proxy.faults.append(Fault("lambda", "", "/configuration", rewrite=(b'"State": "Active"', b'"State": "Pending"')))
    monkeypatch.setattr(function_kind, "UPDATE_TIMEOUT_S", 2.0)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    clear_client_cache()
    try:
        gate = CallGate()
        ctx = Context(stack="huntaze-local", region="us-east-1", account_id="123456789012", client=gate.client)
        reconciler = Reconciler(ctx, gate=gate)
        waits: list[float] = []
        reconciler.wait = lambda s: bool(waits.append(s))
        results = {str(r.key): r for r in reconciler.apply(stack, ApplyOptions(requeue_deadline_s=600))}
    finally:
        proxy.stop()
        monkeypatch.setenv("AWS_ENDPOINT_URL", aws)
        clear_client_cache()
    function = results["Function/op-gate"]
    assert function.action is Action.UPDATED and function.attempts == 2, function.message
    assert sorted(function.changed) == ["release", "reservedConcurrency"]
    assert waits and waits[0] > 0  # requeued after the temporary error's delay, not retried in place
    creates = [r for r in proxy.requests if r.service == "lambda" and r.operation == "PostRest"
               and r.body.rstrip().endswith("/functions")]
    assert len(creates) == 1, [r.body[-80:] for r in creates]
    conflicts = [r for r in proxy.requests if "ResourceConflictException" in r.body]
    assert conflicts == []
    live = client("lambda").get_function(FunctionName="op-gate")
    assert live["Concurrency"]["ReservedConcurrentExecutions"] == 3
    assert client("lambda").get_alias(FunctionName="op-gate", Name="live")["FunctionVersion"] == "1"
