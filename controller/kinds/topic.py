"""Topic: an SNS topic (alarm actions), its display name, KMS key and subscriptions.

Registered in `controller.kinds.registry`; called only by `controller.reconciler`. SNS has no lookup by name,
so the topic is found by its ARN (region, account and name are known). SNS string attributes go through the
declarative map in `controller.normalize`. Subscriptions are compared as a set of (protocol, endpoint).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from controller.kinds.base import Context, FieldPolicy, FieldRule, Kind, LiveResource, check_name, spec_of
from controller.kinds.prefetch import tags_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import AttributeMap, bool_attr, str_attr, tags_from_list, tags_to_list, unordered, user_tags
from controller.ownership import desired_tags, is_owned, owned_key, tag_changes
from controller.specs.fields import SpecModel, aws_name, max_chars

TOPIC_ATTRIBUTES = AttributeMap(
    {
        "displayName": str_attr("DisplayName", ""),
        "kmsMasterKeyId": str_attr("KmsMasterKeyId", None),
        "fifoTopic": bool_attr("FifoTopic", False),
    }
)
_SUBSCRIPTIONS = "topic-subscriptions"


# SNS: 1..256 characters (".fifo" included), letters, digits, '-' and '_'; a FIFO topic's name ends in ".fifo".
TOPIC_NAME = aws_name("topic name", r"[A-Za-z0-9_-]+(\.fifo)?", 256,
                      "letters, digits, '-' and '_' (plus a final '.fifo' for a FIFO topic)")
Protocol = Literal["http", "https", "email", "email-json", "sms", "sqs", "application", "lambda", "firehose"]


class Subscription(SpecModel):
    protocol: Protocol
    endpoint: str = Field(min_length=1, max_length=2048)


class TopicSpec(SpecModel):
    topic_name: Annotated[str, AfterValidator(TOPIC_NAME)] | None = None
    # SNS: "the display name ... can include up to 100 characters" (used as the SMS sender name).
    display_name: Annotated[str, AfterValidator(max_chars("displayName", 100))] = ""
    kms_master_key_id: str | None = Field(None, min_length=1, max_length=2048)
    fifo: bool = False
    subscriptions: list[Subscription] = []
    tags: dict[str, str] = {}

    @model_validator(mode="after")
    def _fifo_rules(self) -> TopicSpec:
        if self.topic_name and self.topic_name.endswith(".fifo") != self.fifo:
            raise ValueError("topicName must end with .fifo exactly when fifo is true")
        if self.fifo and (others := sorted({s.protocol for s in self.subscriptions} - {"sqs"})):
            raise ValueError(f"a FIFO topic delivers only to SQS queues (got {', '.join(others)} subscriptions)")
        return self


def topic_name(manifest: Manifest) -> str:
    spec = spec_of(manifest, TopicSpec)
    name = spec.topic_name or manifest.metadata.name
    return name + ".fifo" if spec.fifo and not name.endswith(".fifo") else name


@register
class TopicHandler(Kind[TopicSpec]):
    kind = "Topic"
    value_output = "arn"  # what `valueFrom: {topicRef: NAME}` takes by default
    spec_model = TopicSpec
    not_found_codes = frozenset({"NotFound", "NotFoundException"})
    rules = {"fifoTopic": FieldRule(FieldPolicy.IMMUTABLE, "SNS cannot change a topic's type")}

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        return check_name(manifest, self.spec(manifest).topic_name, topic_name(manifest), TOPIC_NAME, "topicName")

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        return []

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        return {
            "displayName": spec.display_name,
            "kmsMasterKeyId": spec.kms_master_key_id,
            "fifoTopic": spec.fifo,
            "subscriptions": unordered(s.model_dump() for s in spec.subscriptions),
            "tags": desired_tags(manifest, ctx.stack, spec.tags),
        }

    def _arn(self, name: str, ctx: Context) -> str:
        return f"arn:aws:sns:{ctx.region}:{ctx.account_id}:{name}"

    def prefetch(self, manifests: Sequence[Manifest], ctx: Context) -> None:
        """The subscriptions of every topic of the tier from one paginated ListSubscriptions."""
        wanted = {self._arn(topic_name(m), ctx) for m in manifests}
        by_topic: dict[str, list[dict[str, Any]]] = {arn: [] for arn in wanted}
        for page in ctx.client("sns").get_paginator("list_subscriptions").paginate():
            for sub in page.get("Subscriptions", []):
                if sub.get("TopicArn") in by_topic:
                    by_topic[sub["TopicArn"]].append(sub)
        for arn, subs in by_topic.items():
            ctx.prefetched.put(_SUBSCRIPTIONS, arn, subs)

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        return self._live(self._arn(topic_name(manifest), ctx), ctx, manifest.key)

    def _live(self, arn: str, ctx: Context, key: ResourceKey | None = None) -> LiveResource | None:
        sns = ctx.client("sns")
        found = self.read_or_none(sns.get_topic_attributes, TopicArn=arn)
        if found is None:
            return None
        attributes = found["Attributes"]
        raw_tags = tags_of(ctx, arn)
        if raw_tags is None:
            raw_tags = tags_from_list(sns.list_tags_for_resource(ResourceArn=arn).get("Tags"))
        tags = user_tags(raw_tags)
        prefetched, subscriptions = ctx.prefetched.take(_SUBSCRIPTIONS, arn)
        if not prefetched:
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
