"""The stack's container images, locally: deterministic builds of their inputs pushed to the emulator's ECR.

This machine has no Docker engine, so the local plane never builds an image; it runs the scraper and the
controller from the checkout. The TaskDefinition kind still pins every ECR image by digest
(`controller.image_digest`), so the local stack needs each image its specs name in ECR, with a digest that changes
exactly when the program changes. `IMAGES`: the scraper (tag ``local``, the local overlay's; its inputs are what
``scraper/Dockerfile`` copies) and the controller (tag ``latest``, as ecs-specs/controller-task.yaml names it;
the controller's packages and the specs baked into it). `build` makes one
layer from an image's input files:
a tar with sorted entries, fixed owner and times, then an OCI-style manifest with that layer's digest; the image
digest is the manifest's sha256, as ECR computes it. `push` creates the repository if missing and puts the
manifest under its tag (``imageDigest`` given: moto would otherwise derive it from the layer digests,
docs/architecture.md). `push_all` is called by `localplane.services.MotoServer` after it starts and after each
reset, so any local moto (``huntazectl up``, the tests) holds the images the local specs name.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRAPER = "huntaze/onlyfans-scraper"
# repository -> (tag, the input files and directories, relative to the repo root)
IMAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    SCRAPER: ("local", ("scraper", "common", "pyproject.toml")),
    "huntaze/controller": ("latest", ("controller", "common", "localplane", "manifests", "ecs-specs",
                                      "pyproject.toml")),
}
_SKIP = ("__pycache__", ".pyc", ".pyo")
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Image:
    manifest: str
    digest: str  # sha256:... of the manifest
    layer_digest: str


def _files(root: Path, inputs: tuple[str, ...]) -> list[Path]:
    found: set[Path] = set()
    for name in inputs:
        path = root / name
        candidates = path.rglob("*") if path.is_dir() else [path]
        found.update(p for p in candidates if p.is_file() and not any(s in str(p) for s in _SKIP))
    return sorted(found)


def _layer(root: Path, files: list[Path]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(f"app/{path.relative_to(root).as_posix()}")
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


_BUILT: dict[tuple[Any, ...], Image] = {}


def build(repository: str = SCRAPER, root: Path = REPO_ROOT) -> Image:
    """The image of ``repository``'s input files under ``root`` (built again only when a file changed size or
    mtime)."""
    files = _files(root, IMAGES[repository][1])
    signature = (repository, *((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if signature not in _BUILT:
        _BUILT[signature] = _build(root, files)
    return _BUILT[signature]


def _build(root: Path, files: list[Path]) -> Image:
    layer = _layer(root, files)
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers",
                         "diff_ids": [layer_digest]}}, sort_keys=True, separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": len(layer),
                    "digest": layer_digest}],
    }, sort_keys=True, separators=(",", ":"))
    return Image(manifest, "sha256:" + hashlib.sha256(manifest.encode()).hexdigest(), layer_digest)


def push(ecr: Any, repository: str, image: Image, tag: str) -> str:
    """Put ``image`` in ECR as ``repository:tag``; returns its digest."""
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=repository)
    ecr.put_image(repositoryName=repository, imageManifest=image.manifest, imageManifestMediaType=MANIFEST_TYPE,
                  imageTag=tag, imageDigest=image.digest)
    return image.digest


def push_all(ecr: Any) -> None:
    for repository, (tag, _) in IMAGES.items():
        push(ecr, repository, build(repository), tag)
