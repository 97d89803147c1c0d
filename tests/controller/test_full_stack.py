"""The whole Huntaze stack (manifests/ + ecs-specs/, written by the kinds engineer) against moto over HTTP.

One long scenario, because applying the full stack takes tens of seconds (the Lambda zip is built):
apply from empty; a second apply reports everything unchanged with zero write calls (counted by the botocore
hook in conftest.py); then every kind that has no resource in the basic test stack is changed behind the
controller's back at once (mutations_more.py): `diff` exits 1 naming each field, `apply` fixes them all,
`diff` exits 0.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.aws import client, current_region
from controller.kinds import registry
from controller.kinds.base import Context
from controller.reconciler import Reconciler

Ctl = Callable[..., tuple[int, str, str]]


def _mutations(name: str) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location(f"_full_{name}", Path(__file__).parent / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.MUTATIONS)


def test_full_stack_validates_offline(ctl: Ctl, offline_calls: Any, full_stack: Any) -> None:
    code, _, err = ctl("validate", *full_stack.args)
    assert code == 0, err
    assert offline_calls.calls == []


def test_full_stack_every_kind_has_a_drift_mutation(full_stack: Any) -> None:
    mutations = {**_mutations("mutations"), **_mutations("mutations_more")}
    missing = sorted(full_stack.kinds() - set(mutations))
    assert not missing, f"add a drift mutation for {missing} in tests/controller/mutations_more.py"


def test_full_stack_apply_noop_then_drift_of_every_kind_is_named_and_fixed(
    aws_calls: Any, ctl: Ctl, full_stack: Any
) -> None:
    count = len(full_stack.manifests)
    code, out, err = ctl("apply", *full_stack.args)
    assert code == 0 and f"{count} created" in out, out + err
    aws_calls.clear()
    code, out, err = ctl("apply", *full_stack.args)
    assert code == 0 and f"{count} unchanged" in out, out + err
    assert aws_calls.writes == [], aws_calls.writes
    code, out, _ = ctl("drift", *full_stack.args, "--format", "json")
    assert code == 0 and json.loads(out)["summary"] == {"resources": count, "drifted": 0, "notInSpec": 0}, out

    ctx = Context(stack="huntaze-local", region=current_region(),
                  account_id=client("sts").get_caller_identity()["Account"], client=client)
    Reconciler(ctx).plan(full_stack.loaded)  # resolves references the handlers' reads need
    expected = {}
    for kind, mutate in sorted(_mutations("mutations_more").items()):
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
