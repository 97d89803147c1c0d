"""Program configuration is a checked contract: the stack's environment for the gate and the scraper is checked
offline against each program's committed settings schema (validate and apply), with file:line and no AWS call.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.controller.conftest import FULL_STACK_DIRS, load_full_stack

Ctl = Callable[..., tuple[int, str, str]]
TASK = "onlyfans-scraper-task.yaml"


@pytest.fixture
def stack_copy(tmp_path: Path) -> tuple[Path, list[str]]:
    """manifests/ and ecs-specs/ copied under tmp_path; the -f/--var arguments that load the copy."""
    args = load_full_stack().args
    for source in FULL_STACK_DIRS:
        shutil.copytree(source, tmp_path / source.name)
        args = [str(tmp_path / source.name) if a == str(source) else a for a in args]
    return tmp_path, args


def _edit(path: Path, old: str, new: str) -> int:
    """Replace ``old`` once; return its 1-based line."""
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    return text[: text.index(old)].count("\n") + 1


@pytest.mark.parametrize(("file", "old", "new", "expected"), [
    (f"ecs-specs/{TASK}", '{name: HUNTAZE_CONCURRENCY, value: "3"}', '{name: HUNTAZE_CONCURRENCY, value: "many"}',
     "HUNTAZE_CONCURRENCY: must be an integer (got 'many')"),
    (f"ecs-specs/{TASK}", '{name: HUNTAZE_CONCURRENCY, value: "3"}', '{name: HUNTAZE_CONCURRENCY, value: "0"}',
     "HUNTAZE_CONCURRENCY: must be >= 1 (got '0')"),
    (f"ecs-specs/{TASK}", '{name: HUNTAZE_ADAPTER, value: browser}', '{name: HUNTAZE_ADAPTR, value: browser}',
     "HUNTAZE_ADAPTR: unknown setting of scraper; did you mean HUNTAZE_ADAPTER?"),
    ("manifests/gate.yaml", "HUNTAZE_RATE_ALGORITHM: window", "HUNTAZE_RATE_ALGORITHM: fastest",
     "HUNTAZE_RATE_ALGORITHM: must be one of window, token_bucket (got 'fastest')"),
    ("manifests/gate.yaml", "HUNTAZE_LOG_LEVEL: INFO", "HUNTAZE_LOG_LEVEL: LOUD",
     "HUNTAZE_LOG_LEVEL: must match"),
])
@pytest.mark.parametrize("command", ["validate", "apply"])
def test_program_settings_bad_environment_value_fails_offline_with_file_line(
    ctl: Ctl, offline_calls: Any, stack_copy: tuple[Path, list[str]], file: str, old: str, new: str,
    expected: str, command: str,
) -> None:
    root, args = stack_copy
    line = _edit(root / file, old, new)
    code, out, err = ctl(command, *args)
    assert code == 2, out + err
    assert re.search(rf"{re.escape(Path(file).name)}:{line}: {re.escape(expected)}", err), err
    assert offline_calls.calls == []


def test_program_settings_password_in_plain_redis_url_is_refused(
    ctl: Ctl, offline_calls: Any, stack_copy: tuple[Path, list[str]]
) -> None:
    _, args = stack_copy
    args = [a if not a.startswith("REDIS_URL=") else "REDIS_URL=redis://:s3cretPw@cache:6379/0" for a in args]
    if not any(a.startswith("REDIS_URL=") for a in args):
        args += ["--var", "REDIS_URL=redis://:s3cretPw@cache:6379/0"]
    code, _, err = ctl("validate", *args)
    assert code == 2 and "REDIS_URL: holds a password in plain text" in err, err
    assert "s3cretPw" not in err
    assert offline_calls.calls == []
