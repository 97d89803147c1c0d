"""Topic: an SNS topic (alarm actions), its display name, KMS key and subscriptions.

Registered in `controller.kinds.registry`; called only by `controller.reconciler`. SNS has no lookup by name,
so the topic is found by its ARN (region, account and name are known). SNS string attributes go through the
declarative map in `controller.normalize`. Subscriptions are compared as a set of (protocol, endpoint).
"""

from __future__ import annotations

from typing import Any

from controller.kinds.base import Context, FieldPolicy, FieldRule, KindHandler, LiveResource
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import AttributeMap, bool_attr, str_attr, tags_from_list, tags_to_list, unordered, user_tags
from controller.ownership import desired_tags, is_owned, owned_key, tag_changes
from controller.retrying import error_code
from controller.specs.fields import SpecModel

TOPIC_ATTRIBUTES = AttributeMap(
    {
        "displayName": str_attr("DisplayName", ""),
        "kmsMasterKeyId": str_attr("KmsMasterKeyId", None),
        "fifoTopic": bool_attr("FifoTopic", False),
    }
)
_NOT_FOUND = ("NotFound", "NotFoundException")


class Subscription(SpecModel):
    protocol: str  # email, sqs, lambda, https...
    endpoint: str


class TopicSpec(SpecModel):
    topic_name: str | None = None
    display_name: str = ""
    kms_master_key_id: str | None = None
    fifo: bool = False
    subscriptions: list[Subscription] = []
    tags: dict[str, str] = {}


def topic_name(manifest: Manifest) -> str:
    spec: TopicSpec = manifest.spec
    name = spec.topic_name or manifest.metadata.name
    return name + ".fifo" if spec.fifo and not name.endswith(".fifo") else name


@register
class TopicHandler(KindHandler):
    kind = "Topic"
    spec_model = TopicSpec
    rules = {"fifoTopic": FieldRule(FieldPolicy.IMMUTABLE, "SNS cannot change a topic's type")}

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        return []

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec: TopicSpec = manifest.spec
        return {
            "displayName": spec.display_name,
            "kmsMasterKeyId": spec.kms_master_key_id,
            "fifoTopic": spec.fifo,
            "subscriptions": unordered(s.model_dump() for s in spec.subscriptions),
            "tags": desired_tags(manifest, ctx.stack, spec.tags),
        }

    def _arn(self, name: str, ctx: Context) -> str:
        return f"arn:aws:sns:{ctx.region}:{ctx.account_id}:{name}"

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        return self._live(self._arn(topic_name(manifest), ctx), ctx, manifest.key)

    def _live(self, arn: str, ctx: Context, key: ResourceKey | None = None) -> LiveResource | None:
        sns = ctx.client("sns")
        try:
            attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
        except Exception as exc:
            if error_code(exc) in _NOT_FOUND:
                return None
            raise
        tags = user_tags(tags_from_list(sns.list_tags_for_resource(ResourceArn=arn).get("Tags")))
        subscriptions = sns.list_subscriptions_by_topic(TopicArn=arn).get("Subscriptions", [])
        fields = {
            **TOPIC_ATTRIBUTES.from_api(attributes),
            "subscriptions": unordered({"protocol": s["Protocol"], "endpoint": s["Endpoint"]} for s in subscriptions),
            "tags": tags,
        }
        name = arn.rsplit(":", 1)[-1]
        resolved = key or owned_key(tags) or ResourceKey(kind=self.kind, name=name)
        return LiveResource(resolved, arn, fields, {"arn": arn, "name": name}, tags, is_owned(tags, ctx.stack))

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        sns = ctx.client("sns")
        attributes = TOPIC_ATTRIBUTES.to_api({k: v for k, v in desired.items() if v not in (None, "", False)})
        arn = sns.create_topic(Name=topic_name(manifest), Attributes=attributes,
                               Tags=tags_to_list(desired["tags"]))["TopicArn"]
        for sub in desired["subscriptions"]:
            sns.subscribe(TopicArn=arn, Protocol=sub["protocol"], Endpoint=sub["endpoint"])
        name = arn.rsplit(":", 1)[-1]
        return LiveResource(manifest.key, arn, dict(desired), {"arn": arn, "name": name}, desired["tags"], True)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        sns = ctx.client("sns")
        for name in ("displayName", "kmsMasterKeyId"):
            if name in changed:
                value = desired[name] or ""
                api_name = TOPIC_ATTRIBUTES.fields[name].api_name
                sns.set_topic_attributes(TopicArn=live.physical_id, AttributeName=api_name, AttributeValue=value)
        if "subscriptions" in changed:
            self._sync_subscriptions(live.physical_id, desired["subscriptions"], ctx)
        if "tags" in changed:
            to_set, to_remove = tag_changes(desired["tags"], live.tags)
            if to_set:
                sns.tag_resource(ResourceArn=live.physical_id, Tags=tags_to_list(to_set))
            if to_remove:
                sns.untag_resource(ResourceArn=live.physical_id, TagKeys=to_remove)
        fields = {**live.fields, **{c: desired[c] for c in changed}}
        return LiveResource(live.key, live.physical_id, fields, live.outputs, desired["tags"], True)

    def _sync_subscriptions(self, arn: str, wanted: list[dict[str, str]], ctx: Context) -> None:
        sns = ctx.client("sns")
        existing = sns.list_subscriptions_by_topic(TopicArn=arn).get("Subscriptions", [])
        have = {(s["Protocol"], s["Endpoint"]): s["SubscriptionArn"] for s in existing}
        want = {(s["protocol"], s["endpoint"]) for s in wanted}
        for pair, sub_arn in have.items():
            if pair not in want and sub_arn.startswith("arn:"):
                sns.unsubscribe(SubscriptionArn=sub_arn)
        for protocol, endpoint in sorted(want - set(have)):
            sns.subscribe(TopicArn=arn, Protocol=protocol, Endpoint=endpoint)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        ctx.client("sns").delete_topic(TopicArn=live.physical_id)

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        sns = ctx.client("sns")
        found = []
        for page in sns.get_paginator("list_topics").paginate():
            for topic in page.get("Topics", []):
                live = self._live(topic["TopicArn"], ctx)
                if live is not None and live.owned:
                    found.append(live)
        return found

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        subs = live.fields.get("subscriptions", [])
        return f"topic {live.outputs['name']} and its {len(subs)} subscriptions (alarm actions pointing at its ARN)"
