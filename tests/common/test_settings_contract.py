"""The gate's and the scraper's settings contracts: committed, current, printed by --help, and a malformed
REDIS_URL is one line naming the variable in both programs (real subprocesses, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.settings import check_environment, schema_json, settings_schema
from gate.settings import GateSettings
from scraper.settings import ScraperSettings

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = {"gate": GateSettings, "scraper": ScraperSettings}


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HUNTAZE_", "REDIS_URL"))}
    return subprocess.run([sys.executable, *argv], cwd=REPO, env={**base, **(env or {})}, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_settings_schema_committed_file_is_current(program: str) -> None:
    committed = (REPO / program / "settings.schema.json").read_text()
    assert committed == schema_json(PROGRAMS[program], program), (
        f"{program}/settings.schema.json is stale: run `python -m {program} --schema > "
        f"{program}/settings.schema.json`")


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_settings_schema_lists_every_field_with_type_default_and_secret(program: str) -> None:
    schema = settings_schema(PROGRAMS[program], program)
    names = {s["name"] for s in schema["settings"]}
    assert names == set(PROGRAMS[program].model_fields)
    redis = next(s for s in schema["settings"] if s["name"] == "redis_url")
    assert redis["secret"] and redis["env"][0] == "REDIS_URL"
    for entry in schema["settings"]:
        assert entry["type"] in ("string", "integer", "number", "boolean"), entry
        assert entry["required"] or "default" in entry, entry


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_program_help_prints_settings_table_and_does_not_start(program: str) -> None:
    done = _run("-m", program, "--help")
    assert done.returncode == 0, done.stderr
    for entry in settings_schema(PROGRAMS[program], program)["settings"]:
        assert entry["env"][0] in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize("url", ["notaurl", "redis://:pw-x1@host:notaport/0", "http://host:6379/0", "redis://"])
def test_malformed_redis_url_is_one_line_naming_variable_in_both_programs(url: str) -> None:
    env = {"REDIS_URL": url, "HUNTAZE_WORKFLOWS_QUEUE_URL": "http://127.0.0.1:9/q", "HUNTAZE_RESULTS_BUCKET": "b",
           "HUNTAZE_SITE_URL": "http://127.0.0.1:9", "HUNTAZE_INGRESS_QUEUE_URL": "http://127.0.0.1:9/i",
           "HUNTAZE_INGRESS_DLQ_URL": "http://127.0.0.1:9/d", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    for argv in (("-m", "gate", "--check"), ("-m", "scraper")):
        done = _run(*argv, env=env)
        output = done.stdout + done.stderr
        assert done.returncode == 2, output
        assert "Traceback" not in output
        (line,) = [x for x in output.splitlines() if x.strip()]
        assert "REDIS_URL" in line and "pw-x1" not in line, line


def test_check_environment_reports_type_bounds_enum_and_unknown_names() -> None:
    schema = settings_schema(GateSettings, "gate")
    problems = check_environment(schema, {"HUNTAZE_RATE_SLOT_GUARD_MS": "x", "HUNTAZE_REDIS_CONNECT_TIMEOUT_S": "0",
                                          "HUNTAZE_GATE_FAIL_OPEN": "maybe", "HUNTAZE_RATE_HOLD_MAX_S": "5",
                                          "HUNTAZE_RATE_LIMTS": "global=1/1s", "PATH": "/bin"})
    assert problems == {
        "HUNTAZE_RATE_SLOT_GUARD_MS": "must be an integer (got 'x')",
        "HUNTAZE_REDIS_CONNECT_TIMEOUT_S": "must be > 0 (got '0')",
        "HUNTAZE_GATE_FAIL_OPEN": "must be true or false (got 'maybe')",
        "HUNTAZE_RATE_LIMTS": "unknown setting of gate; did you mean HUNTAZE_RATE_LIMITS?",
    }
