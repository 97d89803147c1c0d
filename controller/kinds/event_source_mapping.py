"""Kind ``EventSourceMapping``: the SQS → Lambda trigger (the ingress queue feeding the gate).

Registered with `controller.kinds.registry`; the reconciler calls the verbs. A mapping has no name in AWS,
only a UUID Lambda invents, so it is found by its identity: (function ARN, source queue ARN), from
``functionRef`` and ``queueRef``. Both are immutable: another pair is another mapping. The function ARN is the
function's ``live`` alias (its ``aliasArn`` output), never ``$LATEST``: a release moves the alias, not the
mapping. A mapping left on the unqualified function (made before aliases) is found too, and shows as a
``functionArn`` change, which is a replacement.

Compared: batch size, batching window, ``ReportBatchItemFailures`` (the gate returns partial batch failures;
without it one failed record would redeliver the whole batch), ScalingConfig.MaximumConcurrency and enabled.
Lambda's states ``Creating``/``Updating``/``Enabling`` are waited out after each write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from controller.kinds.base import Context, FieldPolicy, FieldRule, Kind, LiveResource
from controller.kinds.prefetch import tags_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import user_tags
from controller.ownership import desired_tags, is_owned, owned_key, tag_changes
from controller.retrying import wait_for
from controller.specs.fields import RefTo, SpecModel, in_range

SETTLE_TIMEOUT_S = 120.0
_TRANSITIONS = ("Creating", "Updating", "Enabling", "Disabling")
_UPDATABLE = {
    "batchSize": "BatchSize",
    "maximumBatchingWindowInSeconds": "MaximumBatchingWindowInSeconds",
    "functionResponseTypes": "FunctionResponseTypes",
    "enabled": "Enabled",
}


class EventSourceMappingSpec(SpecModel):
    function_ref: Annotated[str, RefTo("Function")]
    queue_ref: Annotated[str, RefTo("Queue")]
    batch_size: Annotated[int, AfterValidator(in_range(1, 10000))] = 10
    maximum_batching_window_in_seconds: Annotated[int, AfterValidator(in_range(0, 300))] = 0
    function_response_types: list[Literal["ReportBatchItemFailures"]] = Field(
        default_factory=lambda: ["ReportBatchItemFailures"]  # type: ignore[arg-type]
    )
    maximum_concurrency: Annotated[int, AfterValidator(in_range(2, 1000))] | None = None
    enabled: bool = True
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sqs_rules(self) -> EventSourceMappingSpec:
        if self.batch_size > 10 and self.maximum_batching_window_in_seconds < 1:
            raise ValueError("batchSize above 10 needs maximumBatchingWindowInSeconds of at least 1 (SQS rule)")
        return self


def _fields(mapping: dict[str, Any]) -> dict[str, Any]:
    scaling = mapping.get("ScalingConfig") or {}
    return {
        "functionArn": mapping["FunctionArn"],
        "eventSourceArn": mapping["EventSourceArn"],
        "batchSize": mapping.get("BatchSize", 10),
        "maximumBatchingWindowInSeconds": mapping.get("MaximumBatchingWindowInSeconds", 0),
        "functionResponseTypes": sorted(mapping.get("FunctionResponseTypes") or []),
        "maximumConcurrency": scaling.get("MaximumConcurrency"),
        "enabled": mapping.get("State") in ("Enabled", "Enabling", "Creating"),
    }


def find_mapping(lam: Any, function_arn: str, source_arn: str) -> dict[str, Any] | None:
    """The mapping of this function on this queue. Filtered here too: the pair is the identity."""
    pages = lam.get_paginator("list_event_source_mappings").paginate(
        FunctionName=function_arn, EventSourceArn=source_arn
    )
    for page in pages:
        for mapping in page.get("EventSourceMappings", []):
            if mapping.get("EventSourceArn") == source_arn and _same_function(mapping["FunctionArn"], function_arn):
                return dict(mapping)
    unqualified = _unqualified(function_arn)
    if unqualified != function_arn:  # a mapping made on the function itself, before the alias
        return find_mapping(lam, unqualified, source_arn)
    return None


def _unqualified(function_arn: str) -> str:
    """``arn:aws:lambda:R:A:function:NAME`` of a (possibly qualified) function ARN."""
    parts = function_arn.split(":")
    return ":".join(parts[:7]) if len(parts) > 7 and parts[5] == "function" else function_arn


def _same_function(left: str, right: str) -> bool:
    """ARNs equal up to a ``:$LATEST`` qualifier."""
    return left.removesuffix(":$LATEST") == right.removesuffix(":$LATEST")


@register
class EventSourceMappingKind(Kind[EventSourceMappingSpec]):
    kind = "EventSourceMapping"
    spec_model = EventSourceMappingSpec
    not_found_codes = frozenset({"ResourceNotFoundException"})
    rules = {
        "functionArn": FieldRule(FieldPolicy.IMMUTABLE, "a mapping's function is part of its identity"),
        "eventSourceArn": FieldRule(FieldPolicy.IMMUTABLE, "Lambda cannot move a mapping to another queue"),
    }

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        """SQS's pairing rule: a mapping reading a FIFO queue takes at most 10 messages a batch."""
        spec = self.spec(manifest)
        queue = stack.get(ResourceKey(kind="Queue", name=spec.queue_ref))
        if queue is not None and getattr(queue.spec, "fifo", False) and spec.batch_size > 10:
            return [("spec.batchSize", f"{queue.key} is a FIFO queue: Lambda reads at most 10 messages a batch "
                     f"from it (got {spec.batch_size})")]
        return []

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        spec = self.spec(manifest)
        return [ResourceKey(kind="Function", name=spec.function_ref), ResourceKey(kind="Queue", name=spec.queue_ref)]

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        function_arn, source_arn = self._identity(manifest, ctx)
        return {
            "functionArn": function_arn,
            "eventSourceArn": source_arn,
            "batchSize": spec.batch_size,
            "maximumBatchingWindowInSeconds": spec.maximum_batching_window_in_seconds,
            "functionResponseTypes": sorted(spec.function_response_types),
            "maximumConcurrency": spec.maximum_concurrency,
            "enabled": spec.enabled,
            "tags": desired_tags(manifest, ctx.stack, spec.tags),
        }

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        function_arn, source_arn = self._identity(manifest, ctx)
        if not (function_arn.startswith("arn:") and source_arn.startswith("arn:")):
            return None  # a dry run: the function or the queue is not created yet, so neither is the mapping
        found = find_mapping(ctx.client("lambda"), function_arn, source_arn)
        return None if found is None else self._live(found, manifest.key, ctx)

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        lam = ctx.client("lambda")
        args = {api: desired[field] for field, api in _UPDATABLE.items()}
        if desired["maximumConcurrency"] is not None:
            args["ScalingConfig"] = {"MaximumConcurrency": desired["maximumConcurrency"]}
        # The function's role may not yet carry the queue permissions IAM just granted: the error is temporary
        # and the next pass reads and diffs again (no retry loop here).
        created = lam.create_event_source_mapping(
            FunctionName=desired["functionArn"], EventSourceArn=desired["eventSourceArn"], Tags=desired["tags"], **args
        )
        return self._settled(lam, created["UUID"], manifest.key, ctx)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        lam = ctx.client("lambda")
        args = {api: desired[field] for field, api in _UPDATABLE.items() if field in changed}
        if "maximumConcurrency" in changed:
            # An empty ScalingConfig removes the limit (as the Terraform provider does).
            limit = desired["maximumConcurrency"]
            args["ScalingConfig"] = {} if limit is None else {"MaximumConcurrency": limit}
        if args:
            lam.update_event_source_mapping(UUID=live.outputs["uuid"], **args)
        if "tags" in changed:
            to_set, to_remove = tag_changes(desired["tags"], live.tags)
            if to_set:
                lam.tag_resource(Resource=live.physical_id, Tags=to_set)
            if to_remove:
                lam.untag_resource(Resource=live.physical_id, TagKeys=to_remove)
        return self._settled(lam, live.outputs["uuid"], manifest.key, ctx)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        with self.absent_ok():
            ctx.client("lambda").delete_event_source_mapping(UUID=live.outputs["uuid"])

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        lam = ctx.client("lambda")
        owned: list[LiveResource] = []
        for page in lam.get_paginator("list_event_source_mappings").paginate():
            for mapping in page.get("EventSourceMappings", []):
                live = self._live(mapping, None, ctx)
                if live.owned:
                    owned.append(live)
        return owned

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        return "nothing is lost: messages wait in the queue while the mapping is recreated"

    def _identity(self, manifest: Manifest, ctx: Context) -> tuple[str, str]:
        spec = self.spec(manifest)
        function_arn = ctx.output(ResourceKey(kind="Function", name=spec.function_ref), "aliasArn")
        source_arn = ctx.output(ResourceKey(kind="Queue", name=spec.queue_ref), "arn")
        return function_arn, source_arn

    def _settled(self, lam: Any, uuid: str, key: ResourceKey, ctx: Context) -> LiveResource:
        def check() -> dict[str, Any] | None:
            mapping: dict[str, Any] = lam.get_event_source_mapping(UUID=uuid)
            return None if mapping.get("State") in _TRANSITIONS else mapping

        mapping = wait_for(check, what="the mapping to settle", timeout_s=SETTLE_TIMEOUT_S, resource=str(key))
        return self._live(mapping, key, ctx)

    def _live(self, mapping: dict[str, Any], key: ResourceKey | None, ctx: Context) -> LiveResource:
        arn = mapping.get("EventSourceMappingArn") or (
            f"arn:aws:lambda:{ctx.region}:{ctx.account_id}:event-source-mapping:{mapping['UUID']}"
        )
        raw_tags = tags_of(ctx, arn)
        if raw_tags is None:
            raw_tags = ctx.client("lambda").list_tags(Resource=arn).get("Tags") or {}
        tags = user_tags(raw_tags)
        if key is None:
            key = owned_key(tags) or ResourceKey(kind="EventSourceMapping", name=mapping["UUID"])
        return LiveResource(
            key=key,
            physical_id=arn,
            fields={**_fields(mapping), "tags": tags},
            outputs={"uuid": mapping["UUID"], "arn": arn},
            tags=tags,
            owned=is_owned(tags, ctx.stack),
        )
