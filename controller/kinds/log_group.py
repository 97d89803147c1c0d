"""LogGroup: a CloudWatch Logs group with its retention and optional KMS key.

Registered in `controller.kinds.registry`; called only by `controller.reconciler`. Logs returns no
``retentionInDays`` when logs never expire: normalized to None on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator

from controller.kinds.base import Context, Kind, LiveResource, check_name, spec_of
from controller.kinds.prefetch import put_found, tags_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import user_tags
from controller.ownership import desired_tags, is_owned, owned_key, tag_changes
from controller.specs.fields import ARN, SpecModel, aws_name, one_of

RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)

_GROUPS = "log-group"


def _common_prefix(names: set[str]) -> str:
    """The longest string every name starts with ("" if none): narrows DescribeLogGroups to the stack."""
    if not names:
        return ""
    first, last = min(names), max(names)
    size = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), min(len(first), len(last)))
    return first[:size]


# CloudWatch Logs: 1..512 characters: letters, digits, '_', '-', '/', '.' and '#'.
GROUP_NAME = aws_name("log group name", r"[A-Za-z0-9_./#-]+", 512, "letters, digits and '_', '-', '/', '.', '#'")


class LogGroupSpec(SpecModel):
    log_group_name: Annotated[str, AfterValidator(GROUP_NAME)] | None = None  # defaults to metadata.name
    retention_in_days: Annotated[int, AfterValidator(one_of(*RETENTION_DAYS))] | None = 7
    kms_key_id: ARN | None = None  # Logs takes only a KMS key ARN here
    tags: dict[str, str] = {}


def group_name(manifest: Manifest) -> str:
    spec = spec_of(manifest, LogGroupSpec)
    return spec.log_group_name or manifest.metadata.name


@register
class LogGroupHandler(Kind[LogGroupSpec]):
    kind = "LogGroup"
    value_output = "name"  # what `valueFrom: {logGroupRef: NAME}` takes by default
    spec_model = LogGroupSpec
    not_found_codes = frozenset({"ResourceNotFoundException"})

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        spec = self.spec(manifest)
        return check_name(manifest, spec.log_group_name, group_name(manifest), GROUP_NAME, "logGroupName")

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        return []

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        return {"retentionInDays": spec.retention_in_days, "kmsKeyId": spec.kms_key_id,
                "tags": desired_tags(manifest, ctx.stack, spec.tags)}

    def prefetch(self, manifests: Sequence[Manifest], ctx: Context) -> None:
        """Every group of the tier from one paginated DescribeLogGroups (a missing name does not exist)."""
        wanted = {group_name(m) for m in manifests}
        prefix = _common_prefix(wanted)
        pages = ctx.client("logs").get_paginator("describe_log_groups").paginate(
            **({"logGroupNamePrefix": prefix} if prefix else {})
        )
        put_found(ctx, _GROUPS, wanted, {g["logGroupName"]: g for page in pages for g in page.get("logGroups", [])})

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        name = group_name(manifest)
        prefetched, group = ctx.prefetched.take(_GROUPS, name)
        if prefetched:
            return None if group is None else self._live(group, ctx, manifest.key)
        return self._find(name, ctx, manifest.key)

    def _find(self, name: str, ctx: Context, key: ResourceKey | None = None) -> LiveResource | None:
        groups = ctx.client("logs").describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
        group = next((g for g in groups if g["logGroupName"] == name), None)
        return None if group is None else self._live(group, ctx, key)

    def _live(self, group: dict[str, Any], ctx: Context, key: ResourceKey | None = None) -> LiveResource:
        name = group["logGroupName"]
        arn = group.get("logGroupArn") or str(group["arn"]).removesuffix(":*")
        raw_tags = tags_of(ctx, arn)
        if raw_tags is None:
            raw_tags = ctx.client("logs").list_tags_for_resource(resourceArn=arn).get("tags", {})
        tags = user_tags(raw_tags)
        fields = {"retentionInDays": group.get("retentionInDays"), "kmsKeyId": group.get("kmsKeyId"), "tags": tags}
        resolved = key or owned_key(tags) or ResourceKey(kind=self.kind, name=name)
        return LiveResource(resolved, name, fields, {"arn": arn, "name": name}, tags, is_owned(tags, ctx.stack))

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        logs = ctx.client("logs")
        name = group_name(manifest)
        extra = {"kmsKeyId": desired["kmsKeyId"]} if desired["kmsKeyId"] else {}
        logs.create_log_group(logGroupName=name, tags=desired["tags"], **extra)
        if desired["retentionInDays"]:
            logs.put_retention_policy(logGroupName=name, retentionInDays=desired["retentionInDays"])
        arn = f"arn:aws:logs:{ctx.region}:{ctx.account_id}:log-group:{name}"
        return LiveResource(manifest.key, name, dict(desired), {"arn": arn, "name": name}, desired["tags"], True)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        logs = ctx.client("logs")
        name = live.physical_id
        if "retentionInDays" in changed:
            if desired["retentionInDays"]:
                logs.put_retention_policy(logGroupName=name, retentionInDays=desired["retentionInDays"])
            else:
                logs.delete_retention_policy(logGroupName=name)
        if "kmsKeyId" in changed:
            if desired["kmsKeyId"]:
                logs.associate_kms_key(logGroupName=name, kmsKeyId=desired["kmsKeyId"])
            else:
                logs.disassociate_kms_key(logGroupName=name)
        if "tags" in changed:
            to_set, to_remove = tag_changes(desired["tags"], live.tags)
            if to_set:
                logs.tag_resource(resourceArn=live.outputs["arn"], tags=to_set)
            if to_remove:
                logs.untag_resource(resourceArn=live.outputs["arn"], tagKeys=to_remove)
        fields = {**live.fields, **{c: desired[c] for c in changed}}
        return LiveResource(live.key, name, fields, live.outputs, desired["tags"], True)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        with self.absent_ok():
            ctx.client("logs").delete_log_group(logGroupName=live.physical_id)

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        found = []
        for page in ctx.client("logs").get_paginator("describe_log_groups").paginate():
            for group in page.get("logGroups", []):
                live = self._live(group, ctx)
                if live.owned:
                    found.append(live)
        return found

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        return f"log group {live.physical_id} and every log event stored in it"
