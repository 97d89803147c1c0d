"""Named targets (--context): a context fills env, region, profile and vars; the command line wins; a wrong
name or file is one clear error. Run through `huntazectl validate`, offline."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.cli import main
from controller.targets import apply_context

REPO = Path(__file__).resolve().parents[2]
STACK = ["-f", str(REPO / "manifests"), "-f", str(REPO / "ecs-specs")]
CONFIG = """current: local
contexts:
  local: {env: local}
  staging:
    env: staging
    region: eu-west-3
    profile: huntaze-staging
    vars:
      REDIS_URL: rediss://cache.staging:6379/0
      SITE_URL: https://site.example
      SCRAPER_IMAGE_TAG: "1.4.2"
      PRIVATE_SUBNET_A: subnet-0a
      PRIVATE_SUBNET_B: subnet-0b
      SCRAPER_SECURITY_GROUP: sg-01
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    monkeypatch.setenv("HUNTAZE_CONFIG", str(path))
    monkeypatch.delenv("HUNTAZE_CONTEXT", raising=False)
    monkeypatch.delenv("HUNTAZE_ENV", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):  # recorded, so what a context sets is undone afterwards
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    yield path


def _namespace(**given: object) -> argparse.Namespace:
    base = {"context": None, "env": None, "region": None, "stack": None, "variables": []}
    return argparse.Namespace(**{**base, **given})


def test_targets_context_fills_env_region_profile_and_vars(config: Path) -> None:
    environ: dict[str, str] = {"HUNTAZE_CONFIG": str(config)}
    args = _namespace(context="staging", variables=["SITE_URL=https://other.example"])
    assert apply_context(args, environ) == "staging"
    assert (args.env, args.region, environ["AWS_PROFILE"]) == ("staging", "eu-west-3", "huntaze-staging")
    assert args.variables[-1] == "SITE_URL=https://other.example"  # the command line comes last: it wins


def test_targets_command_line_wins_and_current_is_the_default(config: Path) -> None:
    environ: dict[str, str] = {"HUNTAZE_CONFIG": str(config)}
    args = _namespace(env="production", region="us-west-2")
    assert apply_context(args, environ) == "local"
    assert (args.env, args.region) == ("production", "us-west-2")


def test_targets_validate_with_staging_context_needs_no_var(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", *STACK, "--env", "staging"]) == 2  # without the context: variables missing
    assert "unknown variable ${SCRAPER_IMAGE_TAG}" in capsys.readouterr().err
    assert main(["validate", *STACK, "--context", "staging"]) == 0, capsys.readouterr().err


def test_targets_unknown_context_names_the_known_ones(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *STACK, "--context", "prod"]) == 2
    err = capsys.readouterr().err
    assert f"error: {config}: no context 'prod' (known: local, staging)" in err


def test_targets_bad_key_in_config_is_named(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config.write_text("contexts:\n  staging: {env: staging, regoin: eu-west-1}\n")
    assert main(["validate", *STACK, "--context", "staging"]) == 2
    assert "contexts.staging: unknown key 'regoin'" in capsys.readouterr().err
