"""Kind ``Table``: a DynamoDB table with its key schema, billing mode, time to live, point-in-time recovery, tags.

Registered with `controller.kinds.registry`; the reconciler calls the verbs. The controller's leader lease
lives in one (`manifests/controller-lease-table.yaml`), so the lease store is a spec like any other resource.

The table name and the key schema cannot change in place (DynamoDB recreates the table, losing its items): the
diff marks them immutable and `replacement_impact` counts the items. Billing mode and throughput go through
UpdateTable, TTL through UpdateTimeToLive (AWS allows one change of a table's TTL per hour and changes the
attribute only by disabling first), point-in-time recovery through UpdateContinuousBackups. DynamoDB answers
TTL and PITR states that are in transition (ENABLING, DISABLING): they are compared by their target, so a
table whose TTL is being enabled is not drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, model_validator

from controller.errors import TemporaryError
from controller.kinds.base import Context, FieldPolicy, FieldRule, Kind, LiveResource, check_name, spec_of
from controller.kinds.prefetch import tags_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import tags_from_list, tags_to_list, user_tags
from controller.ownership import desired_tags, is_owned, owned_key, tag_changes
from controller.retrying import wait_for
from controller.specs.fields import SpecModel, aws_name, in_range

ACTIVE_TIMEOUT_S = 120.0
TABLE_NAME = aws_name("tableName", r"[A-Za-z0-9_.-]+", 255, "letters, digits, '_', '-' and '.'", min_length=3)
_ATTRIBUTE_NAME = aws_name("attribute name", r".+", 255, "any characters")
_TTL_ON = ("ENABLED", "ENABLING")


class KeyAttribute(SpecModel):
    name: Annotated[str, AfterValidator(_ATTRIBUTE_NAME)]
    type: Literal["S", "N", "B"] = "S"


class Throughput(SpecModel):
    read_capacity_units: Annotated[int, AfterValidator(in_range(1, 40000))]
    write_capacity_units: Annotated[int, AfterValidator(in_range(1, 40000))]


class TimeToLive(SpecModel):
    attribute_name: Annotated[str, AfterValidator(_ATTRIBUTE_NAME)]


class TableSpec(SpecModel):
    table_name: Annotated[str, AfterValidator(TABLE_NAME)] | None = None  # defaults to metadata.name
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None
    billing_mode: Literal["PAY_PER_REQUEST", "PROVISIONED"] = "PAY_PER_REQUEST"
    provisioned_throughput: Throughput | None = None
    time_to_live: TimeToLive | None = None
    point_in_time_recovery: bool = False
    tags: dict[str, str] = {}

    @model_validator(mode="after")
    def _aws_pairings(self) -> TableSpec:
        if self.billing_mode == "PROVISIONED" and self.provisioned_throughput is None:
            raise ValueError("billingMode PROVISIONED needs provisionedThroughput (readCapacityUnits, "
                             "writeCapacityUnits)")
        if self.billing_mode == "PAY_PER_REQUEST" and self.provisioned_throughput is not None:
            raise ValueError("provisionedThroughput applies only to billingMode PROVISIONED")
        if self.sort_key is not None and self.sort_key.name == self.partition_key.name:
            raise ValueError("sortKey must name another attribute than partitionKey")
        return self


def table_name(manifest: Manifest) -> str:
    spec = spec_of(manifest, TableSpec)
    return spec.table_name or manifest.metadata.name


def _key_schema(partition: dict[str, str], sort: dict[str, str] | None) -> list[dict[str, str]]:
    keys = [{"name": partition["name"], "type": partition["type"], "role": "HASH"}]
    if sort is not None:
        keys.append({"name": sort["name"], "type": sort["type"], "role": "RANGE"})
    return keys


def _live_key_schema(table: dict[str, Any]) -> list[dict[str, str]]:
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    keys = [{"name": k["AttributeName"], "type": types.get(k["AttributeName"], "S"), "role": k["KeyType"]}
            for k in table.get("KeySchema", [])]
    return sorted(keys, key=lambda k: k["role"])  # HASH before RANGE


def _billing(table: dict[str, Any]) -> str:
    # A table created PROVISIONED and never switched may lack BillingModeSummary.
    return str((table.get("BillingModeSummary") or {}).get("BillingMode") or "PROVISIONED")


def _throughput(table: dict[str, Any]) -> dict[str, int] | None:
    if _billing(table) != "PROVISIONED":
        return None
    given = table.get("ProvisionedThroughput") or {}
    return {"readCapacityUnits": int(given.get("ReadCapacityUnits", 0)),
            "writeCapacityUnits": int(given.get("WriteCapacityUnits", 0))}


@register
class TableKind(Kind[TableSpec]):
    kind = "Table"
    value_output = "name"  # what `valueFrom: {tableRef: NAME}` takes by default
    spec_model = TableSpec
    not_found_codes = frozenset({"ResourceNotFoundException"})
    rules = {
        "tableName": FieldRule(FieldPolicy.IMMUTABLE, "DynamoDB cannot rename a table"),
        "keySchema": FieldRule(FieldPolicy.IMMUTABLE, "DynamoDB cannot change a table's primary key"),
    }

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        return check_name(manifest, self.spec(manifest).table_name, table_name(manifest), TABLE_NAME, "tableName")

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        return []

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        sort = spec.sort_key.model_dump() if spec.sort_key else None
        throughput = spec.provisioned_throughput
        return {
            "tableName": table_name(manifest),
            "keySchema": _key_schema(spec.partition_key.model_dump(), sort),
            "billingMode": spec.billing_mode,
            "provisionedThroughput": throughput.model_dump(by_alias=True) if throughput else None,
            "timeToLive": spec.time_to_live.attribute_name if spec.time_to_live else None,
            "pointInTimeRecovery": spec.point_in_time_recovery,
            "tags": desired_tags(manifest, ctx.stack, spec.tags),
        }

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        found = self.read_or_none(ctx.client("dynamodb").describe_table, TableName=table_name(manifest))
        return None if found is None else self._live(found["Table"], ctx, manifest.key)

    def _live(self, table: dict[str, Any], ctx: Context, key: ResourceKey | None = None) -> LiveResource:
        ddb = ctx.client("dynamodb")
        name, arn = table["TableName"], table["TableArn"]
        ttl = ddb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
        backups = ddb.describe_continuous_backups(TableName=name).get("ContinuousBackupsDescription", {})
        pitr = (backups.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus")
        raw_tags = tags_of(ctx, arn)
        if raw_tags is None:
            raw_tags = tags_from_list(ddb.list_tags_of_resource(ResourceArn=arn).get("Tags"))
        tags = user_tags(raw_tags)
        fields = {
            "tableName": name,
            "keySchema": _live_key_schema(table),
            "billingMode": _billing(table),
            "provisionedThroughput": _throughput(table),
            "timeToLive": ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") in _TTL_ON else None,
            "pointInTimeRecovery": pitr == "ENABLED",
            "tags": tags,
        }
        outputs = {"arn": arn, "name": name}
        resolved = key or owned_key(tags) or ResourceKey(kind=self.kind, name=name)
        return LiveResource(resolved, name, fields, outputs, tags, is_owned(tags, ctx.stack))

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        ddb = ctx.client("dynamodb")
        name = desired["tableName"]
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": [{"AttributeName": k["name"], "KeyType": k["role"]} for k in desired["keySchema"]],
            "AttributeDefinitions": [{"AttributeName": k["name"], "AttributeType": k["type"]}
                                     for k in desired["keySchema"]],
            "BillingMode": desired["billingMode"],
            "Tags": tags_to_list(desired["tags"]),
        }
        if desired["provisionedThroughput"]:
            args["ProvisionedThroughput"] = _throughput_args(desired["provisionedThroughput"])
        ddb.create_table(**args)
        self._wait_active(ddb, name, manifest.key)
        if desired["timeToLive"]:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": desired["timeToLive"]})
        if desired["pointInTimeRecovery"]:
            ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": True})
        return self._reread(manifest, ctx)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        ddb = ctx.client("dynamodb")
        name = live.physical_id
        if {"billingMode", "provisionedThroughput"} & set(changed):
            args: dict[str, Any] = {"TableName": name, "BillingMode": desired["billingMode"]}
            if desired["provisionedThroughput"]:
                args["ProvisionedThroughput"] = _throughput_args(desired["provisionedThroughput"])
            ddb.update_table(**args)
            self._wait_active(ddb, name, manifest.key)
        if "timeToLive" in changed:
            before, after = live.fields.get("timeToLive"), desired["timeToLive"]
            if before:  # DynamoDB changes the TTL attribute only by disabling it first
                ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                    "Enabled": False, "AttributeName": before})
            if after:
                ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                    "Enabled": True, "AttributeName": after})
        if "pointInTimeRecovery" in changed:
            ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": desired["pointInTimeRecovery"]})
        if "tags" in changed:
            to_set, to_remove = tag_changes(desired["tags"], live.tags)
            if to_set:
                ddb.tag_resource(ResourceArn=live.outputs["arn"], Tags=tags_to_list(to_set))
            if to_remove:
                ddb.untag_resource(ResourceArn=live.outputs["arn"], TagKeys=to_remove)
        return self._reread(manifest, ctx)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        with self.absent_ok():
            ctx.client("dynamodb").delete_table(TableName=live.physical_id)

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        ddb = ctx.client("dynamodb")
        owned: list[LiveResource] = []
        for page in ddb.get_paginator("list_tables").paginate():
            for name in page.get("TableNames", []):
                found = self.read_or_none(ddb.describe_table, TableName=name)
                if found is not None and (live := self._live(found["Table"], ctx)).owned:
                    owned.append(live)
        return owned

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        table = ctx.client("dynamodb").describe_table(TableName=live.physical_id)["Table"]
        return (f"table {live.physical_id} and its {table.get('ItemCount', 0)} items (count refreshed by DynamoDB "
                "about every six hours), its point-in-time recovery history included")

    def _wait_active(self, ddb: Any, name: str, key: ResourceKey) -> None:
        def active() -> bool | None:
            status = ddb.describe_table(TableName=name)["Table"].get("TableStatus")
            return True if status == "ACTIVE" else None

        wait_for(active, what=f"table {name} to be ACTIVE", timeout_s=ACTIVE_TIMEOUT_S, resource=str(key))

    def _reread(self, manifest: Manifest, ctx: Context) -> LiveResource:
        live = self.read(manifest, ctx)
        if live is None:
            raise TemporaryError(str(manifest.key), "table not visible yet after the write", delay=2)
        return live


def _throughput_args(throughput: dict[str, int]) -> dict[str, int]:
    return {"ReadCapacityUnits": throughput["readCapacityUnits"],
            "WriteCapacityUnits": throughput["writeCapacityUnits"]}
