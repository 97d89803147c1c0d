"""Which Lambda zip a given set of build inputs already produced, so that an unchanged function is not zipped again.

Used by `controller.packaging.build_lambda_zip`. The Function kind asks for its zip on every reconcile (its
``CodeSha256`` is part of the desired state), and the controller reconciles every interval: re-zipping the gate
(wheels unpacked, everything deflated at level 9) cost about one CPU second per cycle, most of an idle
controller's budget. A build is now keyed by a hash of its inputs:

- the source entries' names and bytes (small files, hashed by content: an edit that keeps size and mtime still
  counts, and a ``touch`` that changes nothing does not);
- the wheels' names and sizes (the wheel cache folder is keyed by the requirements text and written once, so a
  listing is enough; reading megabytes of wheels each cycle is what this module avoids);
- the architecture and Python version;
- this builder's own source (`controller/packaging.py`): a change to how zips are made invalidates every entry.

A hit is remembered in memory (a long-running controller) and in ``<out_dir>/index/<key>.json`` (every one-shot
`apply` after the first). An entry is used only if its zip is still there with the recorded size; anything else
is a miss and the zip is rebuilt, never an error.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

_BUILDER_SOURCE = Path(__file__).with_name("packaging.py")
_memory: dict[tuple[Path, str], tuple[Path, str, int]] = {}
_lock = threading.Lock()


def inputs_key(
    label: str, sources: Mapping[str, bytes], wheels: Sequence[Path], architecture: str, python_version: str
) -> str:
    """A hash of everything the zip (its bytes and its file name, from ``label``) depends on; see the module
    docstring for what and why."""
    digest = hashlib.sha256()
    digest.update(_builder_digest())
    digest.update(f"{label}\0{architecture}\0{python_version}\0".encode())
    for name in sorted(sources):
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256(sources[name]).digest())
    for wheel in wheels:
        digest.update(f"wheel\0{wheel.name}\0{wheel.stat().st_size}\0".encode())
    return digest.hexdigest()


@functools.cache
def _builder_digest() -> bytes:
    return hashlib.sha256(_BUILDER_SOURCE.read_bytes()).digest()


def lookup(out_dir: Path, key: str) -> tuple[Path, str, int] | None:
    """``(zip path, CodeSha256, size)`` built earlier from inputs with this key, if the zip is still intact."""
    with _lock:
        found = _memory.get((out_dir, key))
    if found is None:
        found = _read_index(out_dir, key)
    if found is None or not _intact(found):
        return None
    with _lock:
        _memory[(out_dir, key)] = found
    return found


def remember(out_dir: Path, key: str, path: Path, sha256_b64: str, size: int) -> None:
    with _lock:
        _memory[(out_dir, key)] = (path, sha256_b64, size)
    index = out_dir / "index"
    index.mkdir(parents=True, exist_ok=True)
    entry = index / f"{key}.json"
    tmp = entry.with_name(f"{entry.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps({"zip": path.name, "sha256": sha256_b64, "size": size}))
    os.replace(tmp, entry)


def forget_memory() -> None:
    """Drop the in-memory entries (the on-disk index stays); for a caller that rewrites the zips itself."""
    with _lock:
        _memory.clear()


def _read_index(out_dir: Path, key: str) -> tuple[Path, str, int] | None:
    entry = out_dir / "index" / f"{key}.json"
    try:
        data = json.loads(entry.read_text())
        return out_dir / str(data["zip"]), str(data["sha256"]), int(data["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no entry, or one from an interrupted writer: rebuild


def _intact(found: tuple[Path, str, int]) -> bool:
    path, _, size = found
    try:
        return path.stat().st_size == size
    except OSError:
        return False

