"""Deterministic "Python packages -> Lambda zip" builder, used by the Function kind and `huntazectl build`.

Both go through `function_zip`, fed by the Function spec (``code``, ``architecture``, ``runtime``): the zip
`huntazectl build gate` prints is byte for byte the one `apply` uploads.

The controller deploys any Python Lambda by path, as an operator deploys any workload: it never imports the code
it ships. `build_lambda_zip` copies package directories (or single module files, with their parent packages'
``__init__.py``) into the zip root and adds the third-party dependencies of a requirements file as wheels built
for the function's architecture (``manylinux2014_aarch64`` for arm64), so compiled parts such as pydantic-core
are the build Lambda can load.

Same inputs give the same bytes, hence the same ``CodeSha256`` Lambda reports, which is how the reconciler sees
that code changed: entries are sorted, dated 1980-01-01, mode 0644, made on "unix", compressed at one level.

Built zips are reused: `controller.build_cache` keys each build by a hash of its inputs, so an unchanged
function (the controller asks for its zip every cycle) is not unpacked and deflated again.

Wheels are fetched once with ``pip download`` into a cache keyed by (architecture, Python version, requirements
text) so repeated builds never touch the network. They are unpacked here rather than with ``pip install
--target``: pip would write a ``direct_url.json`` naming the cache path, and the bytes would then depend on where
the cache lives. Unpacking a wheel is what installing it means for a flat Lambda layout (purelib and platlib
both go to the root).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from controller import build_cache
from controller.errors import HuntazeCtlError

Architecture = Literal["arm64", "x86_64"]

REPO_ROOT = Path(__file__).resolve().parents[1]
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
_UNIX = 3
_COMPRESS_LEVEL = 9
PLATFORMS: dict[str, str] = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
# Lambda's Python runtime ships boto3; a zip must not carry its own (size, and version skew), nor a browser.
FORBIDDEN_DISTRIBUTIONS = frozenset({"boto3", "botocore", "s3transfer", "playwright"})
_EXCLUDED_DIRS = frozenset({"__pycache__", "tests", "test", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")


class PackagingError(HuntazeCtlError):
    """The zip could not be built. The message names the input to fix or the command that failed."""


@dataclass(frozen=True)
class LambdaZip:
    """A built zip: where it is, its ``CodeSha256`` (base64 of the SHA-256 digest) and its size in bytes."""

    path: Path
    sha256_b64: str
    size: int


def code_sha256(data: bytes) -> str:
    """Exactly what Lambda reports as ``CodeSha256`` for a zip of these bytes."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def default_wheel_cache(architecture: Architecture, python_version: str) -> Path:
    return REPO_ROOT / ".cache" / "wheels" / f"{architecture}-{python_version}"


def build_lambda_zip(
    *,
    packages: Sequence[Path | str],
    requirements: Path | None,
    architecture: Architecture = "arm64",
    python_version: str = "3.12",
    out_dir: Path | None = None,
    wheel_cache: Path | None = None,
) -> LambdaZip:
    """Build the zip and return where it is with its CodeSha256. Raises `PackagingError`."""
    if architecture not in PLATFORMS:
        raise PackagingError(f"architecture must be one of {sorted(PLATFORMS)} (got {architecture!r})")
    sources: dict[str, bytes] = {}
    for package in packages:
        _add_entries(sources, _source_entries(Path(package)), origin=str(package))
    wheels: list[Path] = []
    if requirements is not None:
        cache = wheel_cache or default_wheel_cache(architecture, python_version)
        wheels = fetch_wheels(requirements, architecture, python_version, cache)
    target_dir = out_dir or (REPO_ROOT / ".cache" / "lambda")
    key = build_cache.inputs_key(_zip_name(packages, ""), sources, wheels, architecture, python_version)
    found = build_cache.lookup(target_dir, key)
    if found is not None:
        return LambdaZip(path=found[0], sha256_b64=found[1], size=found[2])
    entries = dict(sources)
    for wheel in wheels:
        _add_entries(entries, _wheel_entries(wheel), origin=wheel.name)
    _refuse_forbidden(entries)
    data = zip_bytes(entries)
    target_dir.mkdir(parents=True, exist_ok=True)
    sha = code_sha256(data)
    name = _zip_name(packages, sha)
    path = target_dir / name
    # Unique per process and thread: resources sharing a package are built concurrently (a fixed name raced).
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    build_cache.remember(target_dir, key, path, sha, len(data))
    return LambdaZip(path=path, sha256_b64=sha, size=len(data))


def function_zip(
    *,
    packages: Sequence[str],
    requirements: str | None,
    architecture: Architecture,
    runtime: str,
    root: Path = REPO_ROOT,
    out_dir: Path | None = None,
) -> LambdaZip:
    """The zip of a Function spec's ``code`` (paths relative to ``root`` unless absolute) for its architecture
    and runtime (``python3.12``): the one build `apply` uploads and `huntazectl build` prints, so the two can never
    differ."""
    return build_lambda_zip(
        packages=[root / p for p in packages],
        requirements=root / requirements if requirements else None,
        architecture=architecture,
        python_version=runtime.removeprefix("python"),
        out_dir=out_dir,
    )


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A zip whose bytes depend only on the entries: sorted names, fixed date, mode and creator system."""
    with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as buffer:
        with zipfile.ZipFile(buffer, "w") as archive:
            for name in sorted(entries):
                info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
                info.create_system = _UNIX
                info.external_attr = FILE_MODE << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, entries[name], compresslevel=_COMPRESS_LEVEL)
        buffer.seek(0)
        return buffer.read()


def _add_entries(entries: dict[str, bytes], new: Iterator[tuple[str, bytes]], *, origin: str) -> None:
    for name, data in new:
        previous = entries.get(name)
        if previous is not None and previous != data:
            raise PackagingError(f"{origin}: {name} is also provided by another input with other content")
        entries[name] = data


def _is_excluded(relative: PurePosixPath) -> bool:
    if any(part in _EXCLUDED_DIRS for part in relative.parts[:-1]):
        return True
    return relative.name.endswith(_EXCLUDED_SUFFIXES) or relative.name.startswith("test_")


def _package_root(path: Path) -> Path:
    """The nearest ancestor that is not a package: zip names are relative to it (``common/contract.py``)."""
    root = path.parent
    while (root / "__init__.py").is_file():
        root = root.parent
    return root


def _source_entries(path: Path) -> Iterator[tuple[str, bytes]]:
    path = path.resolve()
    if not path.exists():
        raise PackagingError(f"{path}: package or module not found; check the Function spec's code paths")
    root = _package_root(path)
    if path.is_file():
        files = [path]
        parent = path.parent
        while parent != root:
            files.append(parent / "__init__.py")
            parent = parent.parent
    else:
        files = [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        relative = PurePosixPath(file.relative_to(root).as_posix())
        if not _is_excluded(relative):
            yield str(relative), file.read_bytes()


def _wheel_entries(wheel: Path) -> Iterator[tuple[str, bytes]]:
    """Unpack a wheel flat: ``*.data/purelib`` and ``*.data/platlib`` go to the root, other data is dropped."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            parts = PurePosixPath(info.filename).parts
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue
                parts = parts[2:]
            relative = PurePosixPath(*parts)
            # Dependencies keep their own test modules (some import them); only bytecode is dropped.
            if "__pycache__" in relative.parts or relative.name.endswith(_EXCLUDED_SUFFIXES):
                continue
            yield str(relative), archive.read(info)


def _refuse_forbidden(entries: dict[str, bytes]) -> None:
    tops = {name.split("/", 1)[0].lower() for name in entries}
    found = sorted(FORBIDDEN_DISTRIBUTIONS & tops)
    if found:
        raise PackagingError(
            f"the zip would contain {', '.join(found)}: the Lambda runtime provides boto3 and a Lambda must not"
            " ship a browser; remove them from the requirements (or whatever pulls them in)"
        )


def _requirements_key(requirements: Path, architecture: str, python_version: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"{architecture}\0{python_version}\0".encode())
    digest.update(requirements.read_bytes())
    return digest.hexdigest()[:16]


def fetch_wheels(requirements: Path, architecture: Architecture, python_version: str, cache: Path) -> list[Path]:
    """Wheels for the requirements, downloaded once into ``cache/<key>/`` (key: arch, Python, requirements)."""
    if not requirements.is_file():
        raise PackagingError(f"{requirements}: requirements file not found")
    folder = cache / _requirements_key(requirements, architecture, python_version)
    marker = folder / ".complete"
    if not marker.is_file():
        _download_wheels(requirements, architecture, python_version, folder)
        marker.write_text(requirements.read_text())
    return sorted(folder.glob("*.whl"))


def _download_wheels(requirements: Path, architecture: Architecture, python_version: str, folder: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix="wheels-", dir=folder.parent if folder.parent.exists() else None))
    folder.parent.mkdir(parents=True, exist_ok=True)
    abi = "cp" + python_version.replace(".", "")
    argv = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
        "--only-binary=:all:", "--platform", PLATFORMS[architecture], "--python-version", python_version,
        "--implementation", "cp", "--abi", abi, "--dest", str(staging), "-r", str(requirements),
    ]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        shutil.rmtree(staging, ignore_errors=True)
        raise PackagingError("pip download took over 15 minutes; check the package index and retry") from None
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise PackagingError(
            f"pip download for {PLATFORMS[architecture]} / cp{abi[2:]} failed for {requirements}:\n{tail}\n"
            "every dependency needs a wheel for that platform; pin a version that has one"
        )
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)


def _zip_name(packages: Sequence[Path | str], sha: str) -> str:
    first = Path(packages[0]).stem if packages else "lambda"
    return f"{first}-{base64.b64decode(sha).hex()[:12]}.zip"
