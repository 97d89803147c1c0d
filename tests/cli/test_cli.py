"""`huntazectl` entry point: cheap command discovery that matches what each module registers, usage errors
without imports of the heavy stack, and an explicit AWS region."""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.aws import RegionNotConfigured, current_region, is_local_endpoint
from controller.cli import discover, main

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("boto3", "botocore", "pydantic", "rich", "yaml", "controller.reconciler", "controller.kinds")


def test_discover_names_and_help_match_what_each_module_registers() -> None:
    found = discover()
    assert {"apply", "diff", "drift", "get", "describe", "validate"} <= set(found)
    for module_name in {info.module for info in found.values()}:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module_name).register(sub)
        helps = {a.dest: a.help for a in sub._choices_actions}
        assert helps == {n: i.help for n, i in found.items() if i.module == module_name}, module_name


@pytest.mark.parametrize("argv", [["--help"], ["bogus"], ["diff", "--bogus"], ["validate", "--help"]])
def test_cli_help_and_usage_errors_import_no_heavy_module(argv: list[str]) -> None:
    probe = ("import sys, runpy\nsys.argv = ['huntazectl', *sys.argv[1:]]\ntry:\n"
             "    runpy.run_module('controller.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe, *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)
    assert "LOADED []" in done.stdout, done.stdout + done.stderr


def test_cli_top_help_lists_every_discovered_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for name, info in discover().items():
        assert name in out and info.help.split()[0] in out


def test_region_unset_against_real_aws_stops_and_says_how(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(RegionNotConfigured, match="export AWS_REGION="):
        current_region()
    assert current_region(required=False) == "us-east-1"  # offline checks only
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert current_region() == "us-east-1"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://sqs.example.com")
    with pytest.raises(RegionNotConfigured):
        current_region()


def test_region_from_profile_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    config.write_text("[default]\nregion = eu-west-3\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert current_region() == "eu-west-3"


def test_cli_diff_without_region_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_ACCESS_KEY_ID="x",
               AWS_SECRET_ACCESS_KEY="x")
    done = subprocess.run([sys.executable, "-m", "controller.cli", "diff", "-f", "manifests", "-f", "ecs-specs"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: no AWS region is set") and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("url", "local"), [("http://127.0.0.1:5000", True), ("http://localhost:4566", True),
                                            ("https://sqs.eu-west-1.amazonaws.com", False), (None, False)])
def test_is_local_endpoint(url: str | None, local: bool) -> None:
    assert is_local_endpoint(url) is local
