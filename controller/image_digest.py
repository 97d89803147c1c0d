"""Container images by digest: a task definition never runs a mutable tag alone.

Called by the TaskDefinition kind (`controller.kinds.task_definition`) for every container image of the spec,
each time it computes the desired state: ``ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG`` becomes
``ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO@sha256:...`` by ECR DescribeImages (one read per image per pass). So
the registered task definition pins what ECS pulls (a retried or replaced task runs the same bytes), the diff
compares digests, and a tag pushed again to new content is a change that registers a new revision.

- An image already given by digest (``REPO@sha256:...``, with or without a tag) is kept as ``REPO@sha256:...``.
- An ECR tag that does not exist (or a repository that does not) is a `PermanentError` naming the file, line and
  field, and what to do: push the image, or fix the tag.
- Any other registry (Docker Hub, a bare local name) is not resolved and is kept as written: the stack's own
  specs name ECR in every environment (tests/controller/test_image_digest.py checks each overlay).

Locally the scraper's image is the deterministic build `localplane.local_images` pushes to the emulator's ECR.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from controller.errors import PermanentError, TemporaryError
from controller.model import Manifest

_ECR = re.compile(
    r"^(?P<host>(?P<registry>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?)"
    r"/(?P<repo>[a-z0-9][a-z0-9._/-]*?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
_DIGEST = re.compile(r"^(?P<name>[^@]+?)(?::[\w][\w.-]{0,127})?@(?P<digest>sha256:[0-9a-f]{64})$")
NOT_FOUND = frozenset({"ImageNotFoundException", "RepositoryNotFoundException"})


def by_digest(image: str) -> str | None:
    """``REPO@sha256:...`` when ``image`` names its digest already (a tag beside it is dropped), else None."""
    match = _DIGEST.match(image)
    return f"{match.group('name')}@{match.group('digest')}" if match else None


def resolve(image: str, ecr: Callable[[str], Any], manifest: Manifest, field: str) -> str:
    """``image`` by digest; ``ecr(region)`` gives an ECR client for the image's region."""
    pinned = by_digest(image)
    if pinned is not None:
        return pinned
    where = f"{manifest.where(field)}: {field}"
    match = _ECR.match(image)
    if match is None:
        return image  # outside ECR: left as written (tests' stand-in images); the stack's own specs use ECR
    tag = match.group("tag") or "latest"
    repo, registry = match.group("repo"), match.group("registry")
    client = ecr(match.group("region"))
    try:
        found = client.describe_images(registryId=registry, repositoryName=repo, imageIds=[{"imageTag": tag}])
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in NOT_FOUND:
            what = "no such repository" if code == "RepositoryNotFoundException" else f"no image tagged {tag!r}"
            raise PermanentError(str(manifest.key), f"{where}: cannot resolve {image!r} to a digest: {what} in ECR "
                                 f"repository {repo} (registry {registry}); push the image with that tag (CI's "
                                 "docker push; locally `huntazectl up` pushes the scraper build) or fix the tag"
                                 ) from exc
        raise
    details = found.get("imageDetails") or []
    if not details or not details[0].get("imageDigest"):
        raise TemporaryError(str(manifest.key), f"{where}: ECR returned no digest for {image!r} yet", delay=5)
    return f"{match.group('host')}/{repo}@{details[0]['imageDigest']}"
