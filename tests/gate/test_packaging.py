"""The deterministic Lambda zip builder (controller/packaging.py) and `huntazectl build gate`."""

from __future__ import annotations

import ast
import base64
import hashlib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from controller.cli import main
from controller.packaging import FORBIDDEN_DISTRIBUTIONS, PackagingError, build_lambda_zip, function_zip

ELF_MACHINE_AARCH64 = 183
ELF_MACHINE_X86_64 = 62


def _tiny_package(root: Path, source: str = "VALUE = 1\n") -> Path:
    package = root / "tinypkg"
    (package / "tests").mkdir(parents=True)
    (package / "__pycache__").mkdir()
    (package / "__init__.py").write_text(source)
    (package / "tests" / "test_x.py").write_text("assert True\n")
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (package / "mod.pyc").write_bytes(b"\0")
    return package


def test_build_lambda_zip_same_inputs_give_same_bytes(tmp_path: Path) -> None:
    package = _tiny_package(tmp_path / "src")
    first = build_lambda_zip(packages=[package], requirements=None, out_dir=tmp_path / "a")
    (package / "__init__.py").touch()  # a newer mtime must not matter
    second = build_lambda_zip(packages=[package], requirements=None, out_dir=tmp_path / "b")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256_b64 == second.sha256_b64
    digest = base64.b64encode(hashlib.sha256(first.path.read_bytes()).digest()).decode()
    assert first.sha256_b64 == digest and first.size == first.path.stat().st_size
    names = zipfile.ZipFile(first.path).namelist()
    assert names == ["tinypkg/__init__.py"]
    info = zipfile.ZipFile(first.path).getinfo("tinypkg/__init__.py")
    assert info.date_time == (1980, 1, 1, 0, 0, 0) and info.external_attr >> 16 == 0o100644


def test_build_lambda_zip_changed_source_byte_changes_hash(tmp_path: Path) -> None:
    package = _tiny_package(tmp_path / "src")
    before = build_lambda_zip(packages=[package], requirements=None, out_dir=tmp_path)
    (package / "__init__.py").write_text("VALUE = 2\n")
    after = build_lambda_zip(packages=[package], requirements=None, out_dir=tmp_path)
    assert before.sha256_b64 != after.sha256_b64


def test_build_lambda_zip_module_file_keeps_its_package_path(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    built = build_lambda_zip(packages=[repo / "common" / "contract.py"], requirements=None, out_dir=tmp_path)
    assert zipfile.ZipFile(built.path).namelist() == ["common/__init__.py", "common/contract.py"]


def test_build_lambda_zip_missing_package_says_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match="not found"):
        build_lambda_zip(packages=[tmp_path / "nope"], requirements=None, out_dir=tmp_path)


def test_build_lambda_zip_boto3_in_inputs_is_refused(tmp_path: Path) -> None:
    package = _tiny_package(tmp_path / "src")
    boto = tmp_path / "src" / "boto3"
    boto.mkdir()
    (boto / "__init__.py").write_text("")
    with pytest.raises(PackagingError, match="boto3"):
        build_lambda_zip(packages=[package, boto], requirements=None, out_dir=tmp_path)


def _elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF"
    return int.from_bytes(data[18:20], "little")


def _gate_zip(out_dir: Path) -> Any:
    return function_zip(packages=["gate", "common"], requirements="gate/requirements.txt", architecture="arm64",
                        runtime="python3.12", out_dir=out_dir)


def test_gate_zip_holds_gate_common_and_arm64_wheels(tmp_path: Path) -> None:
    built = _gate_zip(tmp_path / "one")
    again = _gate_zip(tmp_path / "two")
    assert built.path.read_bytes() == again.path.read_bytes()
    archive = zipfile.ZipFile(built.path)
    names = archive.namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {"gate", "common", "pydantic", "pydantic_core", "pydantic_settings", "redis",
            "aws_lambda_powertools"} <= tops
    assert not tops & FORBIDDEN_DISTRIBUTIONS
    assert "gate/decide.lua" in names and "gate/handler.py" in names
    # Every `common` module the zipped code imports is in the zip (a missing one fails only in real Lambda:
    # the local plane runs the gate from the repository).
    imported = set()
    for name in names:
        if name.endswith(".py") and name.split("/", 1)[0] in ("gate", "common"):
            for node in ast.walk(ast.parse(archive.read(name))):
                if isinstance(node, ast.ImportFrom) and node.module == "common":
                    imported |= {f"common/{a.name}.py" for a in node.names}
                elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("common."):
                    imported.add(node.module.replace(".", "/") + ".py")
    assert imported and imported <= set(names), f"missing from the gate zip: {sorted(imported - set(names))}"
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n or n.startswith("tests/")]
    so_files = [n for n in names if n.startswith("pydantic_core/") and n.endswith(".so")]
    assert so_files and all("aarch64" in n and "cpython-312" in n for n in so_files)
    assert _elf_machine(archive.read(so_files[0])) == ELF_MACHINE_AARCH64
    print(f"gate zip: {built.size} bytes, {len(names)} entries, CodeSha256 {built.sha256_b64}")


def test_build_command_prints_path_size_and_code_sha(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "gate", "--out", str(tmp_path), "--arch", "arm64"]) == 0
    out = capsys.readouterr().out
    built = next(tmp_path.glob("*.zip"))
    digest = base64.b64encode(hashlib.sha256(built.read_bytes()).digest()).decode()
    assert str(built) in out and digest in out and str(built.stat().st_size) in out
