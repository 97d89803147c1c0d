"""The whole Huntaze stack (manifests/ + ecs-specs/, written by the kinds engineer) against moto over HTTP.

One long scenario, because applying the full stack takes tens of seconds (the Lambda zip is built):
apply from empty; a second apply reports everything unchanged with zero write calls (counted by the botocore
hook in conftest.py); then every kind that has no resource in the basic test stack (test_reconcile.py covers
those) is changed behind the controller's back at once (tests/controller/drift/<kind>.py): `diff` exits 1 naming
each field, `apply` fixes them all, `diff` exits 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.aws import client, current_region
from controller.kinds import registry
from controller.kinds.base import Context
from controller.reconciler import Reconciler
from controller.specs import LoadOptions, load
from tests.controller.drift import module_name, mutations

Ctl = Callable[..., tuple[int, str, str]]


BASIC_STACK = Path(__file__).parent / "stacks" / "basic"


def _basic_kinds() -> set[str]:
    stack = load(LoadOptions([str(BASIC_STACK)], "local", {"ENV": "local", "AWS_REGION": "us-east-1",
                                                           "AWS_ACCOUNT_ID": "000000000000"}))
    return {m.kind for m in stack.manifests}


def test_full_stack_validates_offline(ctl: Ctl, offline_calls: Any, full_stack: Any) -> None:
    code, _, err = ctl("validate", *full_stack.args)
    assert code == 0, err
    assert offline_calls.calls == []


def test_full_stack_every_kind_has_a_drift_mutation(full_stack: Any) -> None:
    missing = sorted(full_stack.kinds() - set(mutations()))
    files = ", ".join(f"tests/controller/drift/{module_name(kind)}.py" for kind in missing)
    assert not missing, f"add a drift mutation for {missing}: {files} with mutate(manifest, live) -> field path"


def test_full_stack_apply_noop_then_drift_of_every_kind_is_named_and_fixed(
    aws_calls: Any, ctl: Ctl, full_stack: Any
) -> None:
    count = len(full_stack.manifests)
    # The stack lock creates its table from the stack's Table spec before the reconcile, which then finds it
    # exactly as declared: unchanged, never "updated".
    code, out, err = ctl("apply", *full_stack.args)
    assert code == 0 and f"{count - 1} created, 1 unchanged" in out, out + err
    assert "created the lock table huntaze-controller-lease from its Table spec" in err
    aws_calls.clear()
    code, out, err = ctl("apply", *full_stack.args)
    assert code == 0 and f"{count} unchanged" in out, out + err
    assert aws_calls.writes == [], aws_calls.writes
    code, out, _ = ctl("drift", *full_stack.args, "--format", "json")
    assert code == 0 and json.loads(out)["summary"] == {
        "resources": count, "drifted": 0, "notInSpec": 0, "errors": 0, "exitCode": 0,
        "text": "no drift: the live state matches the specs"}, out

    ctx = Context(stack="huntaze-local", region=current_region(),
                  account_id=client("sts").get_caller_identity()["Account"], client=client)
    Reconciler(ctx).plan(full_stack.loaded)  # resolves references the handlers' reads need
    expected = {}
    basic = _basic_kinds()
    for kind, mutate in sorted(mutations().items()):
        if kind in basic:
            continue
        manifest = next((m for m in full_stack.manifests if m.kind == kind), None)
        assert manifest is not None, f"no {kind} in the full stack"
        live = registry.handler(kind).read(manifest, ctx)
        assert live is not None, f"{manifest.key} not found after apply"
        expected[manifest.key] = mutate(manifest, live)
    code, out, _ = ctl("diff", *full_stack.args)
    assert code == 1, out
    for key, field in expected.items():
        assert f"~ {key}" in out and f"    {field}" in out, f"{key}: {field} not in diff:\n{out}"
    code, out, err = ctl("apply", *full_stack.args)
    assert code == 0, out + err
    updated = "\n".join(line for line in out.splitlines() if "  updated" in line)
    assert all(str(key) in updated for key in expected), out
    code, out, _ = ctl("diff", *full_stack.args)
    assert code == 0, out
