"""Table kind against moto, through the real reconciler: the controller's lease table from manifests/, no-op,
drift behind the controller's back (PITR, TTL, billing, tags) repaired, key schema changes refused, ownership."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from common import aws
from controller.kinds.registry import handler
from controller.packaging import REPO_ROOT
from controller.reconciler import Action, ApplyOptions, Reconciler
from controller.specs import LoadOptions, load

LEASE_MANIFEST = REPO_ROOT / "manifests" / "controller-lease-table.yaml"
LEASE: dict[str, Any] = {
    "partitionKey": {"name": "lockId", "type": "S"},
    "billingMode": "PAY_PER_REQUEST",
    "timeToLive": {"attributeName": "expiresAt"},
    "pointInTimeRecovery": True,
}


def test_table_lease_manifest_applies_with_key_ttl_and_pitr_then_noop_writes_nothing(kit: Any) -> None:
    stack = load(LoadOptions([str(LEASE_MANIFEST)], "local", {"ENV": "local", "AWS_REGION": "us-east-1",
                                                               "AWS_ACCOUNT_ID": "123456789012"}))
    [created] = Reconciler(kit.ctx).apply(stack, ApplyOptions())
    assert created.action is Action.CREATED and not created.message, created.message
    ddb = aws.client("dynamodb")
    table = ddb.describe_table(TableName="huntaze-controller-lease")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "lockId", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "lockId", "AttributeType": "S"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName="huntaze-controller-lease")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiresAt")
    backups = ddb.describe_continuous_backups(TableName="huntaze-controller-lease")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"

    writes = kit.writes("dynamodb", "resourcegroupstaggingapi")
    [again] = Reconciler(kit.ctx).apply(stack, ApplyOptions())
    assert again.action is Action.UNCHANGED
    assert writes.calls == []


def test_table_pitr_and_ttl_disabled_by_hand_are_drift_and_repaired(kit: Any) -> None:
    m = kit.manifest("Table", "locks", LEASE)
    kit.reconcile(m)
    ddb = aws.client("dynamodb")
    ddb.update_continuous_backups(TableName="locks",
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False})
    ddb.update_time_to_live(TableName="locks", TimeToLiveSpecification={"Enabled": False,
                                                                        "AttributeName": "expiresAt"})
    assert {d.top for d in kit.delta(m).drift} == {"pointInTimeRecovery", "timeToLive"}
    writes = kit.writes("dynamodb")
    kit.reconcile(m)
    assert sorted(writes.calls) == ["UpdateContinuousBackups", "UpdateTimeToLive"]
    assert not kit.delta(m).has_drift


def test_table_billing_switched_to_provisioned_by_hand_is_switched_back(kit: Any) -> None:
    m = kit.manifest("Table", "locks", LEASE)
    kit.reconcile(m)
    aws.client("dynamodb").update_table(TableName="locks", BillingMode="PROVISIONED",
                                        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    assert {d.top for d in kit.delta(m).drift} == {"billingMode", "provisionedThroughput"}
    kit.reconcile(m)
    live = handler("Table").read(m, kit.ctx)
    assert live is not None and live.fields["billingMode"] == "PAY_PER_REQUEST"
    assert live.fields["provisionedThroughput"] is None


def test_table_ttl_attribute_change_disables_then_enables(kit: Any) -> None:
    kit.reconcile(kit.manifest("Table", "locks", LEASE))
    moved = kit.manifest("Table", "locks", {**LEASE, "timeToLive": {"attributeName": "ttl"}})
    writes = kit.writes("dynamodb")
    kit.reconcile(moved)
    assert writes.calls == ["UpdateTimeToLive", "UpdateTimeToLive"]
    ttl = aws.client("dynamodb").describe_time_to_live(TableName="locks")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl")


def test_table_user_tag_added_by_hand_is_removed(kit: Any) -> None:
    m = kit.manifest("Table", "locks", {**LEASE, "tags": {"team": "platform"}})
    live = kit.reconcile(m)
    aws.client("dynamodb").tag_resource(ResourceArn=live.outputs["arn"], Tags=[{"Key": "owner", "Value": "bob"}])
    assert [d.path for d in kit.delta(m).drift] == ["tags.owner"]
    kit.reconcile(m)
    assert handler("Table").read(m, kit.ctx).tags == {**live.tags}  # type: ignore[union-attr]


def test_table_key_schema_change_is_refused_not_replaced(kit: Any) -> None:
    kit.reconcile(kit.manifest("Table", "locks", LEASE))
    changed = kit.manifest("Table", "locks", {**LEASE, "partitionKey": {"name": "id", "type": "S"}})
    assert kit.delta(changed).needs_replacement
    results = Reconciler(kit.ctx).apply(kit.stack_of(changed), ApplyOptions())
    assert [r.action for r in results] == [Action.REFUSED]
    assert "items" in results[0].message and "--allow-replace Table/locks" in results[0].message
    key = aws.client("dynamodb").describe_table(TableName="locks")["Table"]["KeySchema"]
    assert key == [{"AttributeName": "lockId", "KeyType": "HASH"}]


def test_table_list_owned_finds_only_this_stacks_tables(kit: Any) -> None:
    kit.reconcile(kit.manifest("Table", "locks", LEASE))
    aws.client("dynamodb").create_table(
        TableName="someone-elses", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
    )
    owned = handler("Table").list_owned(kit.ctx)
    assert [str(live.key) for live in owned] == ["Table/locks"]
    handler("Table").delete(owned[0], kit.ctx)
    assert handler("Table").list_owned(kit.ctx) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"billingMode": "PROVISIONED"}, "needs provisionedThroughput"),
        ({"provisionedThroughput": {"readCapacityUnits": 1, "writeCapacityUnits": 1}}, "only to billingMode"),
        ({"sortKey": {"name": "lockId"}}, "another attribute than partitionKey"),
        ({"partitionKey": {"name": "lockId", "type": "X"}}, "Input should be 'S', 'N' or 'B'"),
        ({"tableName": "a b"}, "may contain only letters, digits"),
        ({"timeToLive": {"attributeName": ""}}, "must be 1..255 characters"),
    ],
)
def test_table_spec_breaking_a_dynamodb_rule_is_rejected(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        handler("Table").spec_model.model_validate({**LEASE, **change})
