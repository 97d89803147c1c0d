"""Which version of a function an invocation runs, and that version's code, as Lambda decides it.

Used by `localplane.mapping_runner`. A mapping on an alias (``function:NAME:live``) invokes the versions the
alias points at, in proportion to its weights (RoutingConfig): `served_versions` reads them from GetAlias, and
`WeightedPicker` hands versions out in exactly those proportions (smooth weighted round robin: with 90/10, one
invocation in ten runs the new version, spread out, not ten in a row). A mapping on the function itself runs
``$LATEST``.

`code_dir` downloads a version's zip from GetFunction's ``Code.Location`` (AWS: a presigned S3 URL; locally the
emulator's ``file://`` URL, see `localplane.emulator`), checks it against the version's CodeSha256, and unpacks
it once per hash. When the function is built for another architecture than this machine (the gate's zip carries
manylinux aarch64 wheels), only the zip's own code is unpacked (the top-level packages no wheel's RECORD lists:
``gate``, ``common``), and its dependencies come from this interpreter's environment.
"""

from __future__ import annotations

import base64
import hashlib
import io
import platform
import shutil
import threading
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

LATEST = "$LATEST"
_UNPACKING = threading.Lock()  # pollers of one runner may ask for the same version at once
_MACHINE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def split_arn(function_arn: str) -> tuple[str, str | None]:
    """(unqualified function ARN or name, qualifier or None)."""
    parts = function_arn.split(":")
    if parts[0] == "arn":
        return ":".join(parts[:7]), parts[7] if len(parts) > 7 else None
    return parts[0], parts[1] if len(parts) > 1 else None


def served_versions(lam: Any, function_arn: str) -> dict[str, float]:
    """Version -> share of the invocations of ``function_arn`` (an alias: its weights)."""
    function, qualifier = split_arn(function_arn)
    if qualifier is None or qualifier == LATEST or qualifier.isdigit():
        return {qualifier or LATEST: 1.0}
    alias = lam.get_alias(FunctionName=function, Name=qualifier)
    extra = {str(v): float(w) for v, w in
             ((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).items() if float(w) > 0}
    primary = round(1.0 - sum(extra.values()), 6)
    return {**({str(alias["FunctionVersion"]): primary} if primary > 0 else {}), **extra}


class WeightedPicker:
    """Smooth weighted round robin: over any run of invocations each version gets its share, to within one."""

    def __init__(self) -> None:
        self._credit: dict[str, float] = {}

    def pick(self, weights: dict[str, float]) -> str:
        self._credit = {v: self._credit.get(v, 0.0) + w for v, w in weights.items()}
        chosen = max(sorted(self._credit), key=lambda v: self._credit[v])
        self._credit[chosen] -= sum(weights.values())
        return chosen


def machine_architecture() -> str:
    return _MACHINE.get(platform.machine().lower(), platform.machine().lower())


def _own_code(archive: zipfile.ZipFile) -> list[str]:
    """The archive members that belong to no installed distribution (its RECORD files)."""
    third_party: set[str] = set()
    for name in archive.namelist():
        top = name.split("/", 1)[0]
        if top.endswith((".dist-info", ".data")) or top.endswith(".libs"):
            third_party.add(top)
        if name.endswith(".dist-info/RECORD"):
            for line in archive.read(name).decode("utf-8", "replace").splitlines():
                path = line.split(",", 1)[0]
                if path and not path.startswith(".."):
                    third_party.add(path.split("/", 1)[0])
    return [n for n in archive.namelist() if n.split("/", 1)[0] not in third_party]


def code_dir(lam: Any, function: str, version: str, cache: Path) -> tuple[Path, dict[str, Any]]:
    """The unpacked code of ``function`` at ``version`` (downloaded once per CodeSha256), and its configuration."""
    found = lam.get_function(FunctionName=function, Qualifier=version)
    config: dict[str, Any] = found["Configuration"]
    sha = str(config["CodeSha256"])
    architecture = (config.get("Architectures") or ["x86_64"])[0]
    whole = architecture == machine_architecture()
    target = cache / f"{hashlib.sha256(sha.encode()).hexdigest()[:24]}-{'all' if whole else 'own'}"
    with _UNPACKING:
        if not target.is_dir():
            _unpack(found, f"{function}:{version}", sha, whole, target)
    return target, config


def _unpack(found: dict[str, Any], what: str, sha: str, whole: bool, target: Path) -> None:
    location = (found.get("Code") or {}).get("Location", "")
    with urllib.request.urlopen(location, timeout=60) as answer:
        data: bytes = answer.read()
    if base64.b64encode(hashlib.sha256(data).digest()).decode() != sha:
        raise RuntimeError(f"the code downloaded for {what} does not match its CodeSha256 {sha}")
    scratch = target.with_name(target.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(scratch, members=None if whole else _own_code(archive))
    scratch.rename(target)
