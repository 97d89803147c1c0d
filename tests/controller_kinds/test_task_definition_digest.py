"""TaskDefinition kind pins ECR images by digest (moto's ECR over HTTP): the registered task definition names
``REPO@sha256:...``, the diff compares digests, a tag pushed again to new content registers a new revision, and a
tag that does not resolve is an error naming the file, line, field and fix."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from common import aws
from controller.errors import PermanentError
from controller.kinds.registry import handler
from localplane import local_images

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
REPO = "huntaze/onlyfans-scraper"


def _push(tag: str, content: str) -> str:
    """Put an image whose one layer is ``content`` under ``tag``; its digest (sha256 of the manifest, as ECR)."""
    layer = "sha256:" + hashlib.sha256(content.encode()).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": local_images.MANIFEST_TYPE,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                      "digest": layer},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": 1,
                                       "digest": layer}]}, sort_keys=True)
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    aws.client("ecr").put_image(repositoryName=REPO, imageManifest=manifest, imageTag=tag, imageDigest=digest)
    return digest


def _task(image: str) -> dict[str, Any]:
    return {"family": "huntaze-onlyfans-scraper", "cpu": 1024, "memory": 2048,
            "containerDefinitions": [{"name": "playwright-scraper", "image": image}]}


def _image(live: Any) -> str:
    return str(live.fields["containerDefinitions"][0]["image"])


def test_task_definition_registers_the_ecr_tag_by_digest_and_a_second_apply_writes_nothing(kit: Any) -> None:
    v1 = _push("release-1", "first build")
    m = kit.manifest("TaskDefinition", "huntaze-onlyfans-scraper", _task(f"{REGISTRY}/{REPO}:release-1"))
    live = kit.reconcile(m)
    assert _image(live) == f"{REGISTRY}/{REPO}@{v1}"
    assert not kit.delta(m).has_drift
    writes = kit.writes("ecs")
    kit.reconcile(m)
    assert writes.calls == []


def test_task_definition_tag_moved_to_new_content_is_a_change_with_both_digests(kit: Any) -> None:
    v1 = _push("release-1", "first build")
    m = kit.manifest("TaskDefinition", "huntaze-onlyfans-scraper", _task(f"{REGISTRY}/{REPO}:release-1"))
    first = kit.reconcile(m)
    v2 = _push("release-1", "the same tag, rebuilt")
    assert v2 != v1
    [changed] = kit.delta(m).drift
    assert changed.path == "containerDefinitions"
    assert _image(first) == f"{REGISTRY}/{REPO}@{v1}"
    assert changed.desired[0]["image"] == f"{REGISTRY}/{REPO}@{v2}"
    second = kit.reconcile(m)
    assert _image(second) == f"{REGISTRY}/{REPO}@{v2}"
    assert second.outputs["revision"] == str(int(first.outputs["revision"]) + 1)


def test_task_definition_image_given_by_digest_is_kept_without_its_tag(kit: Any) -> None:
    digest = "sha256:" + "a" * 64
    m = kit.manifest("TaskDefinition", "huntaze-onlyfans-scraper", _task(f"{REGISTRY}/{REPO}:v9@{digest}"))
    assert _image(kit.reconcile(m)) == f"{REGISTRY}/{REPO}@{digest}"


@pytest.mark.parametrize(("image", "what"), [
    (f"{REGISTRY}/{REPO}:release-9", "no image tagged 'release-9' in ECR repository huntaze/onlyfans-scraper"),
    (f"{REGISTRY}/huntaze/missing:v1", "no such repository in ECR repository huntaze/missing"),
])
def test_task_definition_unresolvable_tag_names_file_line_field_and_fix(kit: Any, image: str, what: str) -> None:
    m = kit.manifest("TaskDefinition", "huntaze-onlyfans-scraper", _task(image))
    with pytest.raises(PermanentError) as raised:
        handler("TaskDefinition").desired(m, kit.ctx)
    message = str(raised.value)
    assert "test.yaml:1: spec.containerDefinitions[0].image: cannot resolve" in message, message
    assert what in message and "push the image with that tag" in message and "or fix the tag" in message


def test_local_scraper_build_is_deterministic_and_changes_with_its_files(tmp_path: Any) -> None:
    for name in ("scraper", "common"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"# {name}\n")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    inputs = local_images.IMAGES[local_images.SCRAPER][1]

    def build() -> Any:
        return local_images._build(tmp_path, local_images._files(tmp_path, inputs))

    first, again = build(), build()
    assert first.digest == again.digest and first.digest == "sha256:" + hashlib.sha256(
        first.manifest.encode()).hexdigest()
    (tmp_path / "scraper" / "worker.py").write_text("print('new')\n")
    assert build().digest != first.digest
