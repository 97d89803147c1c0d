"""The whole Huntaze stack (manifests/ + ecs-specs/, written by the kinds engineer) against moto over HTTP.

Apply from empty, then a second apply that must report everything unchanged with zero write calls (counted
by the botocore hook in conftest.py); every kind in the stack has a drift mutation for test_reconcile.py.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Ctl = Callable[..., tuple[int, str, str]]


def test_full_stack_validates_offline(ctl: Ctl, offline_calls: Any, full_stack: Any) -> None:
    code, _, err = ctl("validate", *full_stack.args)
    assert code == 0, err
    assert offline_calls.calls == []


def test_full_stack_every_kind_has_a_drift_mutation(full_stack: Any) -> None:
    mutations: dict[str, Any] = {}
    for name in ("mutations", "mutations_more"):
        spec = importlib.util.spec_from_file_location(f"_full_{name}", Path(__file__).parent / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        mutations.update(module.MUTATIONS)
    missing = sorted(full_stack.kinds() - set(mutations))
    assert not missing, f"add a drift mutation for {missing} in tests/controller/mutations_more.py"


def test_full_stack_apply_from_empty_then_second_apply_makes_zero_writes(
    aws_calls: Any, ctl: Ctl, full_stack: Any
) -> None:
    count = len(full_stack.manifests)
    code, out, err = ctl("apply", *full_stack.args)
    assert code == 0, out + err
    assert f"{count} created" in out, out
    aws_calls.clear()
    code, out, err = ctl("apply", *full_stack.args)
    assert code == 0 and f"{count} unchanged" in out, out + err
    assert aws_calls.writes == [], aws_calls.writes
    code, out, _ = ctl("drift", *full_stack.args, "--format", "json")
    report = json.loads(out)
    assert code == 0, out
    assert report["summary"] == {"resources": count, "drifted": 0, "notInSpec": 0}
