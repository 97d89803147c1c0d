"""Batched reads before a reconcile pass, so a no-op pass costs about one AWS read per resource, not three.

Called by `controller.reconciler`: `prefetch_tags` once per pass (one Resource Groups Tagging API
``GetResources`` call, filtered on this stack's ownership tag, answers the tags of every owned SQS queue, SNS
topic, log group, alarm, dashboard, bucket, secret, ECS resource and Lambda function), then `prefetch_tier`
before each dependency tier (each kind's `KindHandler.prefetch` batches what it can: one DescribeAlarms for
every alarm, DescribeServices for ten services...; references of the tier are resolved by then).

Everything here is an optimisation: a batch read that fails (an API the account does not allow, an emulator
gap) is logged at debug level and the handlers read one by one as before. Kinds get tags through `tags_of`:
a resource missing from the answer (not owned by this stack, or not supported by the tagging API) is read by
the kind itself, so adoption and ownership checks are unchanged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from controller.kinds.base import Context, KindHandler
from controller.model import TAG_STACK, Manifest

_log = logging.getLogger(__name__)
TAGS = "tags"
PAGE = 100  # GetResources returns at most 100 resources per page


def prefetch_tags(ctx: Context) -> None:
    """Tags of every resource carrying this stack's ownership tag, by ARN, in one paginated call."""
    if not ctx.prefetched.enabled:
        return
    try:
        client = ctx.client("resourcegroupstaggingapi")
        pages = client.get_paginator("get_resources").paginate(
            TagFilters=[{"Key": TAG_STACK, "Values": [ctx.stack]}], ResourcesPerPage=PAGE
        )
        for page in pages:
            for entry in page.get("ResourceTagMappingList", []):
                tags = {t["Key"]: t["Value"] for t in entry.get("Tags", [])}
                ctx.prefetched.put(TAGS, _canonical_arn(entry["ResourceARN"]), tags)
    except Exception as exc:  # an optimisation only: kinds read their tags themselves
        _log.debug("batched tag read skipped: %s", exc)


def tags_of(ctx: Context, arn: str) -> dict[str, str] | None:
    """The prefetched tags of ``arn`` (taken once), or None: the caller reads them itself."""
    found, tags = ctx.prefetched.take(TAGS, _canonical_arn(arn))
    return tags if found else None


def prefetch_tier(
    manifests: Sequence[Manifest], ctx: Context, handler_for: Callable[[str], KindHandler]
) -> None:
    """Let each kind of ``manifests`` batch-read their live state into ``ctx.prefetched``."""
    if not ctx.prefetched.enabled:
        return
    by_kind: dict[str, list[Manifest]] = defaultdict(list)
    for manifest in manifests:
        by_kind[manifest.kind].append(manifest)
    for kind, group in by_kind.items():
        try:
            handler_for(kind).prefetch(group, ctx)
        except Exception as exc:  # an optimisation only: `read` asks AWS one by one
            _log.debug("batched read of %d %s skipped: %s", len(group), kind, exc)


def batches(names: Iterable[str], size: int) -> Iterator[list[str]]:
    """Sorted distinct ``names`` in lists of at most ``size`` (the API's limit per batch read)."""
    ordered = sorted(set(names))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def put_found(ctx: Context, namespace: str, wanted: Iterable[str], found: Mapping[str, Any]) -> None:
    """Each wanted name with its answer from a batch read, or None: the batch proved it does not exist."""
    for name in wanted:
        ctx.prefetched.put(namespace, name, found.get(name))


def _canonical_arn(arn: str) -> str:
    """Log group ARNs come with and without the trailing ``:*``."""
    return arn.removesuffix(":*")
