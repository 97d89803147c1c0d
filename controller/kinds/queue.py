"""Queue: an SQS queue, standard or FIFO, with its dead-letter queue, KMS, retention and long polling.

Registered in `controller.kinds.registry`; called only by `controller.reconciler`. Follows Terraform's
`sqs/queue.go`: attributes go through the declarative map in `controller.normalize` (``"300"`` → 300,
RedrivePolicy JSON → dict, server defaults filled). The queue name and the FIFO flag cannot change in place:
the diff marks them ``requires_replacement`` and `replacement_impact` says what would be lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, model_validator

from controller.kinds.base import Context, FieldPolicy, FieldRule, Kind, LiveResource, check_name, spec_of
from controller.kinds.prefetch import tags_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import SQS_FIFO_ONLY, SQS_QUEUE_ATTRIBUTES, sqs_attributes, sqs_fields, user_tags
from controller.ownership import desired_tags, is_owned, owned_key, tag_changes
from controller.specs.fields import RefTo, SpecModel, aws_name, in_range

FIFO_SUFFIX = ".fifo"
_URLS = "queue-url"
_CLEARABLE = ("RedrivePolicy", "KmsMasterKeyId")


# SQS: 1..80 characters (".fifo" included), letters, digits, '-' and '_'; a FIFO queue's name ends in ".fifo".
QUEUE_NAME = aws_name("queue name", r"[A-Za-z0-9_-]+(\.fifo)?", 80,
                      "letters, digits, '-' and '_' (plus a final '.fifo' for a FIFO queue)")


class DeadLetter(SpecModel):
    queue_ref: Annotated[str, RefTo("Queue")]
    max_receive_count: Annotated[int, AfterValidator(in_range(1, 1000))] = 3


class Kms(SpecModel):
    key_id: str = "alias/aws/sqs"
    data_key_reuse_period_seconds: Annotated[int, AfterValidator(in_range(60, 86400))] = 300


class QueueSpec(SpecModel):
    # defaults to metadata.name (plus ".fifo" for a FIFO queue)
    queue_name: Annotated[str, AfterValidator(QUEUE_NAME)] | None = None
    fifo: bool = False
    visibility_timeout: Annotated[int, AfterValidator(in_range(0, 43200))] = 30
    message_retention_period: Annotated[int, AfterValidator(in_range(60, 1209600))] = 345600
    receive_wait_time_seconds: Annotated[int, AfterValidator(in_range(0, 20))] = 0
    delay_seconds: Annotated[int, AfterValidator(in_range(0, 900))] = 0
    maximum_message_size: Annotated[int, AfterValidator(in_range(1024, 1048576))] = 1048576
    content_based_deduplication: bool = False
    dead_letter: DeadLetter | None = None
    kms: Kms | None = None
    tags: dict[str, str] = {}

    @model_validator(mode="after")
    def _fifo_rules(self) -> QueueSpec:
        if self.content_based_deduplication and not self.fifo:
            raise ValueError("contentBasedDeduplication needs fifo: true")
        if self.queue_name and self.queue_name.endswith(FIFO_SUFFIX) != self.fifo:
            raise ValueError("queueName must end with .fifo exactly when fifo is true")
        return self


def queue_name(manifest: Manifest) -> str:
    spec = spec_of(manifest, QueueSpec)
    name = spec.queue_name or manifest.metadata.name
    return name + FIFO_SUFFIX if spec.fifo and not name.endswith(FIFO_SUFFIX) else name


@register
class QueueHandler(Kind[QueueSpec]):
    kind = "Queue"
    value_output = "url"  # what `valueFrom: {queueRef: NAME}` takes by default
    spec_model = QueueSpec
    not_found_codes = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
    rules = {
        "queueName": FieldRule(FieldPolicy.IMMUTABLE, "SQS cannot rename a queue"),
        "fifoQueue": FieldRule(FieldPolicy.IMMUTABLE, "SQS cannot change a queue's type"),
    }

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        """The name AWS gets (the default included) and SQS's pairing rule: a FIFO queue's dead-letter queue
        must be FIFO, and a standard queue's must be standard."""
        spec = self.spec(manifest)
        problems = check_name(manifest, spec.queue_name, queue_name(manifest), QUEUE_NAME, "queueName")
        target = stack.get(ResourceKey(kind="Queue", name=spec.dead_letter.queue_ref)) if spec.dead_letter else None
        if target is not None and self.spec(target).fifo != spec.fifo:
            mine, theirs = ("FIFO", "standard") if spec.fifo else ("standard", "FIFO")
            problems.append(("spec.deadLetter.queueRef",
                             f"a {mine} queue needs a {mine} dead-letter queue, but {target.key} is {theirs} "
                             f"({target.source}); point it at a {mine} queue"))
        return problems

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        spec = self.spec(manifest)
        return [ResourceKey(kind="Queue", name=spec.dead_letter.queue_ref)] if spec.dead_letter else []

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        redrive = None
        if spec.dead_letter:
            dlq = ResourceKey(kind="Queue", name=spec.dead_letter.queue_ref)
            redrive = {"deadLetterTargetArn": ctx.output(dlq), "maxReceiveCount": spec.dead_letter.max_receive_count}
        fields = sqs_fields(
            {
                "fifoQueue": spec.fifo,
                "visibilityTimeout": spec.visibility_timeout,
                "messageRetentionPeriod": spec.message_retention_period,
                "receiveWaitTimeSeconds": spec.receive_wait_time_seconds,
                "delaySeconds": spec.delay_seconds,
                "maximumMessageSize": spec.maximum_message_size,
                "contentBasedDeduplication": spec.content_based_deduplication,
                "redrivePolicy": redrive,
                "kmsMasterKeyId": spec.kms.key_id if spec.kms else None,
                "kmsDataKeyReusePeriodSeconds": spec.kms.data_key_reuse_period_seconds if spec.kms else None,
                "sqsManagedSseEnabled": spec.kms is None,
            }
        )
        return {"queueName": queue_name(manifest), **fields, "tags": desired_tags(manifest, ctx.stack, spec.tags)}

    def prefetch(self, manifests: Sequence[Manifest], ctx: Context) -> None:
        """Queue URLs from one ListQueues (a queue missing from it is looked up by name in `read`)."""
        wanted = {queue_name(m) for m in manifests}
        for page in ctx.client("sqs").get_paginator("list_queues").paginate(PaginationConfig={"PageSize": 1000}):
            for url in page.get("QueueUrls", []):
                name = url.rstrip("/").rsplit("/", 1)[-1]
                if name in wanted:
                    ctx.prefetched.put(_URLS, name, url)

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        sqs = ctx.client("sqs")
        name = queue_name(manifest)
        found, url = ctx.prefetched.take(_URLS, name)
        if not found:
            url = self.read_or_none(sqs.get_queue_url, QueueName=name)
            url = url["QueueUrl"] if url else self.find_queue_by_key(manifest.key, name, ctx)
        if url is None:
            return None
        return self._live(url, ctx, manifest.key)

    def find_queue_by_key(self, key: ResourceKey, name: str, ctx: Context) -> str | None:
        """The owned queue created for ``key`` under another name (the FIFO twin): found by its tag."""
        prefix = name.removesuffix(FIFO_SUFFIX)
        urls = ctx.client("sqs").list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
        for url in urls:
            tags = ctx.client("sqs").list_queue_tags(QueueUrl=url).get("Tags", {})
            if is_owned(tags, ctx.stack) and owned_key(tags) == key:
                return str(url)
        return None

    def _live(self, url: str, ctx: Context, key: ResourceKey | None = None) -> LiveResource | None:
        sqs = ctx.client("sqs")
        found = self.read_or_none(sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["All"])
        if found is None:
            return None
        attributes = found["Attributes"]
        raw_tags = tags_of(ctx, attributes["QueueArn"])
        if raw_tags is None:
            raw_tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        tags = user_tags(raw_tags)
        name = url.rstrip("/").rsplit("/", 1)[-1]
        fields = {"queueName": name, **sqs_attributes(attributes), "tags": tags}
        resolved_key = key or owned_key(tags) or ResourceKey(kind=self.kind, name=name)
        outputs = {"arn": attributes["QueueArn"], "url": url, "name": name}
        return LiveResource(resolved_key, url, fields, outputs, tags, is_owned(tags, ctx.stack))

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        sqs = ctx.client("sqs")
        attributes = SQS_QUEUE_ATTRIBUTES.to_api({k: v for k, v in desired.items() if v is not None})
        if not desired["fifoQueue"]:
            attributes.pop("FifoQueue", None)
        url = sqs.create_queue(QueueName=desired["queueName"], Attributes=attributes, tags=desired["tags"])[
            "QueueUrl"
        ]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        outputs = {"arn": arn, "url": url, "name": desired["queueName"]}
        return LiveResource(manifest.key, url, dict(desired), outputs, dict(desired["tags"]), True)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        sqs = ctx.client("sqs")
        attribute_fields = [c for c in changed if c in SQS_QUEUE_ATTRIBUTES.fields]
        if not live.fields.get("fifoQueue"):
            attribute_fields = [c for c in attribute_fields if c not in SQS_FIFO_ONLY]
        if attribute_fields:
            attributes = SQS_QUEUE_ATTRIBUTES.to_api(desired, only=attribute_fields)
            # "" clears a KMS key or a redrive policy; for other attributes it would be invalid.
            attributes = {k: v for k, v in attributes.items() if v != "" or k in _CLEARABLE}
            sqs.set_queue_attributes(QueueUrl=live.physical_id, Attributes=attributes)
        if "tags" in changed:
            to_set, to_remove = tag_changes(desired["tags"], live.tags)
            if to_set:
                sqs.tag_queue(QueueUrl=live.physical_id, Tags=to_set)
            if to_remove:
                sqs.untag_queue(QueueUrl=live.physical_id, TagKeys=to_remove)
        fields = {**live.fields, **{c: desired[c] for c in changed}}
        return LiveResource(live.key, live.physical_id, fields, live.outputs, dict(desired["tags"]), True)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        with self.absent_ok():
            ctx.client("sqs").delete_queue(QueueUrl=live.physical_id)

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        sqs = ctx.client("sqs")
        found: list[LiveResource] = []
        for page in sqs.get_paginator("list_queues").paginate():
            for url in page.get("QueueUrls", []):
                tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
                if is_owned(tags, ctx.stack) and (live := self._live(url, ctx)) is not None:
                    found.append(live)
        return found

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        sqs = ctx.client("sqs")
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]
        counts = sqs.get_queue_attributes(QueueUrl=live.physical_id, AttributeNames=names)["Attributes"]
        consumers = self._consumers(live, ctx)
        sources = sqs.list_dead_letter_source_queues(QueueUrl=live.physical_id).get("queueUrls", [])
        return (
            f"queue {live.outputs.get('name')}: {counts.get(names[0], '0')} messages waiting, "
            f"{counts.get(names[1], '0')} in flight, {counts.get(names[2], '0')} delayed; "
            f"consumers: {', '.join(consumers) or 'none'}; "
            f"queues dead-lettering here: {', '.join(u.rsplit('/', 1)[-1] for u in sources) or 'none'}"
        )

    def _consumers(self, live: LiveResource, ctx: Context) -> list[str]:
        """Lambda event source mappings reading this queue (ECS consumers are not visible from SQS)."""
        try:
            mappings = ctx.client("lambda").list_event_source_mappings(EventSourceArn=live.outputs["arn"])
        except Exception:  # the Lambda API may be unavailable in this account or emulator: report unknown
            return ["unknown (cannot list Lambda event source mappings)"]
        return [f"lambda:{':'.join(m['FunctionArn'].split(':')[6:])}" for m in mappings.get("EventSourceMappings", [])]
