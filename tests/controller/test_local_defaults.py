"""The local overlay's variable defaults: validate works against `up`'s stack without --var, the exported
variable wins over the default, --var wins over both, and staging still requires every variable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from controller.specs import LoadOptions, load
from tests.controller.conftest import FULL_STACK_DIRS

Ctl = Callable[..., tuple[int, str, str]]
PATHS = [str(p) for p in FULL_STACK_DIRS]
IDENTITY = {"ENV": "local", "AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID": "123456789012"}


def _gate_env(variables: dict[str, str]) -> dict[str, Any]:
    stack = load(LoadOptions(PATHS, "local", {**IDENTITY, **variables}))
    (gate,) = [m for m in stack.manifests if m.kind == "Function"]
    return dict(gate.spec.environment)


def test_local_overlay_validate_without_var_makes_no_aws_call(
    ctl: Ctl, offline_calls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("HUNTAZE_SITE_URL", raising=False)
    code, out, err = ctl("validate", *[a for p in PATHS for a in ("-f", p)], "--env", "local")
    assert code == 0, err
    assert "resources valid" in out and offline_calls.calls == []


def test_local_overlay_exported_variable_wins_over_default_and_var_wins_over_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert _gate_env({})["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/0")
    assert _gate_env({})["REDIS_URL"] == "redis://127.0.0.1:6390/0"
    assert _gate_env({"REDIS_URL": "redis://127.0.0.1:7000/1"})["REDIS_URL"] == "redis://127.0.0.1:7000/1"


def test_staging_overlay_has_no_defaults_and_names_the_missing_variable(
    ctl: Ctl, offline_calls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/0")
    code, _, err = ctl("validate", *[a for p in PATHS for a in ("-f", p)], "--env", "staging")
    assert code == 2 and "unknown variable ${REDIS_URL}" in err and "--var REDIS_URL=VALUE" in err, err
    assert offline_calls.calls == []
