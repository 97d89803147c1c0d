"""Secret grep over every output format: a password inside a URL never leaves huntazectl in clear.

A Function whose environment holds ``REDIS_URL=redis://:PASSWORD@...`` is applied to moto over HTTP; the spec
then changes the password (so both the desired and the live value are drift, and printed), and every command
that prints a value runs in every output format. Neither password may appear; the masked form must.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

Ctl = Callable[..., tuple[int, str, str]]
STACK = Path(__file__).parent / "stacks" / "secret_env"
LIVE_PASSWORD = "livePw-4c1e9d"  # test values: they must never appear in any output
SPEC_PASSWORD = "specPw-77ab02"


def _url(password: str) -> str:
    return f"REDIS_URL=redis://default:{password}@cache.internal:6379/0"


def _no_secret(out: str) -> None:
    assert LIVE_PASSWORD not in out and SPEC_PASSWORD not in out, out


@pytest.fixture
def applied(aws: str, ctl: Ctl, tmp_path: Path) -> list[str]:
    stack = tmp_path / "stack"
    shutil.copytree(STACK, stack)
    code, out, err = ctl("apply", "-f", str(stack), "--var", _url(LIVE_PASSWORD))
    assert code == 0, out + err
    _no_secret(out + err)
    return ["-f", str(stack), "--var", _url(SPEC_PASSWORD)]


COMMANDS = [
    ("diff",), ("diff", "-v"), ("diff", "-o", "json"), ("diff", "-v", "-o", "json"),
    ("drift",), ("drift", "-v"), ("drift", "--format", "json"), ("drift", "--format", "markdown"),
    ("drift", "-v", "--format", "json"), ("drift", "-v", "--format", "markdown"),
    ("apply", "--dry-run"), ("apply", "--dry-run", "-o", "json"),
    ("describe", "Function/t-secret-env"),
    ("get", "Function"), ("get", "Function", "-o", "wide"), ("get", "Function", "-o", "yaml"),
    ("get", "Function", "-o", "json"),
]


def test_outputs_password_in_url_never_printed_in_any_format(ctl: Ctl, applied: list[str]) -> None:
    for command in COMMANDS:
        code, out, err = ctl(*command, *applied)
        assert code in (0, 1), (command, out + err)
        _no_secret(out + err)
        if command != ("get", "Function"):  # the plain table shows no field values
            assert "redis://default:***@cache.internal" in out, (command, out)


def test_outputs_without_specs_describe_and_get_mask_live_password(ctl: Ctl, applied: list[str]) -> None:
    for command in (("describe", "Function/t-secret-env"), ("get", "Function", "-o", "yaml"),
                    ("get", "Function", "-o", "wide"), ("get", "all", "-o", "json")):
        code, out, err = ctl(*command)
        assert code == 0, (command, out + err)
        _no_secret(out + err)
        assert "redis://default:***@cache.internal" in out, (command, out)


def test_diff_password_change_is_drift_shown_masked_desired_then_live(ctl: Ctl, applied: list[str]) -> None:
    code, out, _ = ctl("diff", *applied)
    assert code == 1, out
    line = next(x for x in out.splitlines() if "REDIS_URL" in x)
    assert line.index("desired") < line.index("live"), line
    assert "drift: 1 to update" in out
    assert "masked credentials differ" in line

