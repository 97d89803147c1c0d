"""Secret ``valueFrom.file``: resolved against the file that declared it, from any working directory.

Applied through huntazectl against a moto server over HTTP; the value never appears in any output.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from common.aws import client

Ctl = Callable[..., tuple[int, str, str]]
TOKEN = "file-token-value-91c2"  # a test value: it must never appear in any output
SECRET = """apiVersion: huntaze.io/v1
kind: Secret
metadata:
  name: t-file-secret
spec:
  description: from a file
  valueFrom: {env: T_FILE_SECRET_UNSET}
"""
OVERLAY = """apiVersion: huntaze.io/v1
kind: Secret
metadata: {name: t-file-secret}
spec:
  valueFrom: {env: null, file: local-secrets/token}
"""


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stack under tmp_path/stack, the working directory somewhere unrelated."""
    stack = tmp_path / "stack"
    (stack / "overlays").mkdir(parents=True)
    (stack / "secrets.yaml").write_text(SECRET)
    (stack / "overlays" / "local.yaml").write_text(OVERLAY)
    cwd = tmp_path / "somewhere" / "else"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    return stack


def test_secret_file_in_overlay_resolves_against_overlay_dir_from_any_cwd(
    aws: str, ctl: Ctl, elsewhere: Path
) -> None:
    (elsewhere / "overlays" / "local-secrets").mkdir()
    (elsewhere / "overlays" / "local-secrets" / "token").write_text(TOKEN + "\n")
    code, out, err = ctl("apply", "-f", str(elsewhere))
    assert code == 0, out + err
    assert TOKEN not in out + err
    assert client("secretsmanager").get_secret_value(SecretId="t-file-secret")["SecretString"] == TOKEN


def test_secret_file_missing_names_overlay_line_field_and_resolved_path(
    aws: str, ctl: Ctl, elsewhere: Path
) -> None:
    code, out, err = ctl("apply", "-f", str(elsewhere))
    assert code == 1, out + err
    resolved = elsewhere.resolve() / "overlays" / "local-secrets" / "token"
    expected = (f"overlays/local.yaml:5: spec.valueFrom.file: no such file {resolved}; create it or set the env "
                "var")
    assert expected in out, out
    assert client("secretsmanager").list_secrets()["SecretList"] == []


def test_secret_file_in_base_manifest_resolves_against_manifest_dir(
    aws: str, ctl: Ctl, elsewhere: Path
) -> None:
    (elsewhere / "overlays" / "local.yaml").unlink()
    (elsewhere / "secrets.yaml").write_text(SECRET.replace("{env: T_FILE_SECRET_UNSET}", "{file: token.txt}"))
    (elsewhere / "token.txt").write_text(TOKEN)
    code, out, err = ctl("apply", "-f", str(elsewhere / "secrets.yaml"))
    assert code == 0, out + err
    assert client("secretsmanager").get_secret_value(SecretId="t-file-secret")["SecretString"] == TOKEN
