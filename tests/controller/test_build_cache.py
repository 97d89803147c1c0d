"""The Lambda zip build cache (controller/build_cache.py): unchanged inputs reuse the zip, any change rebuilds.

"Reused" is read from the file system: a rebuild writes a new file (a temporary file renamed over the zip), so
the zip's inode changes; a reuse leaves the very same file in place.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from controller import build_cache
from controller.packaging import build_lambda_zip


def _package(root: Path) -> Path:
    package = root / "cachedpkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 1\n")
    (package / "handler.py").write_text("def handle(event, context):\n    return event\n")
    return package


def _build(package: Path, out: Path) -> tuple[str, int, Path]:
    built = build_lambda_zip(packages=[package], requirements=None, out_dir=out)
    return built.sha256_b64, built.path.stat().st_ino, built.path


def test_build_cache_unchanged_inputs_reuse_the_zip(tmp_path: Path) -> None:
    package = _package(tmp_path / "src")
    first = _build(package, tmp_path / "out")
    (package / "handler.py").touch()  # a newer mtime with the same bytes is no change
    assert _build(package, tmp_path / "out") == first


def test_build_cache_new_process_reuses_the_zip_from_the_index(tmp_path: Path) -> None:
    package = _package(tmp_path / "src")
    first = _build(package, tmp_path / "out")
    build_cache.forget_memory()  # what a new `apply` process starts with
    assert _build(package, tmp_path / "out") == first
    assert len(list((tmp_path / "out" / "index").glob("*.json"))) == 1


def test_build_cache_same_size_edit_with_old_mtime_rebuilds(tmp_path: Path) -> None:
    package = _package(tmp_path / "src")
    source = package / "__init__.py"
    sha, _, _ = _build(package, tmp_path / "out")
    stat = source.stat()
    source.write_text("VALUE = 2\n")
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime: only the bytes differ
    new_sha, _, path = _build(package, tmp_path / "out")
    assert new_sha != sha
    assert b"VALUE = 2" in _entry(path, "cachedpkg/__init__.py")


def test_build_cache_added_file_rebuilds(tmp_path: Path) -> None:
    package = _package(tmp_path / "src")
    sha, _, _ = _build(package, tmp_path / "out")
    (package / "extra.py").write_text("X = 1\n")
    new_sha, _, path = _build(package, tmp_path / "out")
    assert new_sha != sha
    assert _entry(path, "cachedpkg/extra.py") == b"X = 1\n"


def test_build_cache_deleted_zip_is_rebuilt_with_the_same_bytes(tmp_path: Path) -> None:
    package = _package(tmp_path / "src")
    sha, _, path = _build(package, tmp_path / "out")
    data = path.read_bytes()
    path.unlink()
    build_cache.forget_memory()
    new_sha, _, new_path = _build(package, tmp_path / "out")
    assert (new_sha, new_path) == (sha, path)
    assert new_path.read_bytes() == data


def test_build_cache_truncated_zip_is_rebuilt(tmp_path: Path) -> None:
    package = _package(tmp_path / "src")
    sha, inode, path = _build(package, tmp_path / "out")
    data = path.read_bytes()
    path.write_bytes(data[:10])
    new_sha, new_inode, _ = _build(package, tmp_path / "out")
    assert new_sha == sha and new_inode != inode
    assert path.read_bytes() == data


def test_build_cache_unreadable_index_entry_is_a_miss_not_an_error(tmp_path: Path) -> None:
    package = _package(tmp_path / "src")
    sha, inode, _ = _build(package, tmp_path / "out")
    (entry,) = (tmp_path / "out" / "index").glob("*.json")
    entry.write_text("{half a reco")
    build_cache.forget_memory()
    new_sha, new_inode, _ = _build(package, tmp_path / "out")
    assert new_sha == sha and new_inode != inode
    assert json.loads(entry.read_text())["sha256"] == sha


def _entry(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)
