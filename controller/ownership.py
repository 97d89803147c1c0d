"""Which live resources belong to this stack, and the tags that say so.

Used by every kind module (`desired()` puts `ownership_tags` into the desired tags, `read()`/`list_owned()`
use `is_owned`/`owned_key`) and by `controller.reconciler` (prune and delete touch only owned resources).
Putting the ownership tags into the desired tags means adoption is an ordinary update: an adopted resource
shows ``tags.huntaze.io/stack`` as changed and gets tagged by the normal update path.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.model import (
    ANNOTATION_DELETION_POLICY,
    MANAGED_BY,
    TAG_MANAGED_BY,
    TAG_RESOURCE,
    TAG_STACK,
    Manifest,
    ResourceKey,
)

# Recorded on the resource too, so a resource removed from the specs is still retained when pruned.
TAG_DELETION_POLICY = ANNOTATION_DELETION_POLICY
OWNERSHIP_TAGS = (TAG_MANAGED_BY, TAG_STACK, TAG_RESOURCE, TAG_DELETION_POLICY)


def ownership_tags(manifest: Manifest, stack: str) -> dict[str, str]:
    tags = {TAG_MANAGED_BY: MANAGED_BY, TAG_STACK: stack, TAG_RESOURCE: str(manifest.key)}
    if manifest.retained:
        tags[TAG_DELETION_POLICY] = "retain"
    return tags


def desired_tags(manifest: Manifest, stack: str, user: Mapping[str, str] | None = None) -> dict[str, str]:
    """The spec's own tags (labels are not tags) plus the ownership tags, which win on conflict."""
    return {**(user or {}), **ownership_tags(manifest, stack)}


def is_owned(tags: Mapping[str, str], stack: str) -> bool:
    return tags.get(TAG_STACK) == stack and tags.get(TAG_MANAGED_BY) == MANAGED_BY


def owned_key(tags: Mapping[str, str]) -> ResourceKey | None:
    """The ``Kind/name`` a resource was created for, from its tag."""
    try:
        return ResourceKey.parse(tags.get(TAG_RESOURCE, ""))
    except ValueError:
        return None


def is_retained(tags: Mapping[str, str]) -> bool:
    return tags.get(TAG_DELETION_POLICY, "").lower() == "retain"


def tag_changes(desired: Mapping[str, str], live: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """What to tag (new or different values) and what to untag to make ``live`` equal ``desired``."""
    to_set = {k: v for k, v in desired.items() if live.get(k) != v}
    to_remove = sorted(k for k in live if k not in desired)
    return to_set, to_remove
