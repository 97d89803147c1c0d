"""Service kind against moto: default-VPC networking, desiredCount ignored only when a ScalingPolicy claims it,
capacity strategy unobservable only while DescribeServices leaves it out."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from common import aws
from controller.diff import Verdict
from controller.kinds.registry import handler

CLUSTER: dict[str, Any] = {
    "defaultCapacityProviderStrategy": [
        {"capacityProvider": "FARGATE_SPOT", "weight": 70},
        {"capacityProvider": "FARGATE", "weight": 30},
    ]
}
TASK: dict[str, Any] = {
    "family": "huntaze-onlyfans-scraper",
    "cpu": 1024,
    "memory": 2048,
    "containerDefinitions": [{"name": "playwright-scraper", "image": "scraper:1"}],
}
SERVICE: dict[str, Any] = {
    "serviceName": "huntaze-onlyfans-scraper",
    "clusterRef": "huntaze",
    "taskDefinitionRef": "huntaze-onlyfans-scraper",
    "desiredCount": 1,
    "capacityProviderStrategy": [
        {"capacityProvider": "FARGATE_SPOT", "weight": 70},
        {"capacityProvider": "FARGATE", "weight": 30},
    ],
    "networkConfiguration": {"awsvpcConfiguration": {"subnetsFrom": "default-vpc"}},
}


def _stack(kit: Any, service: dict[str, Any] | None = None) -> Any:
    kit.reconcile(kit.manifest("Cluster", "huntaze", CLUSTER))
    kit.reconcile(kit.manifest("TaskDefinition", "huntaze-onlyfans-scraper", TASK))
    m = kit.manifest("Service", "huntaze-onlyfans-scraper", service or SERVICE)
    return m, kit.reconcile(m)


def test_service_create_on_default_vpc_then_read_has_no_drift(kit: Any) -> None:
    m, live = _stack(kit)
    vpc = live.fields["networkConfiguration"]["awsvpcConfiguration"]
    assert vpc["subnets"] and vpc["securityGroups"] and live.owned
    assert live.outputs["resourceId"] == "service/huntaze/huntaze-onlyfans-scraper"
    delta = kit.delta(m)
    assert not delta.has_drift, delta.as_dict()
    writes = kit.writes("ecs")
    kit.reconcile(m)
    assert writes.calls == []


def test_service_capacity_strategy_missing_from_moto_is_reported_unobservable(kit: Any) -> None:
    m, live = _stack(kit)
    assert "capacityProviderStrategy" not in live.fields  # moto drops it after CreateService
    [field] = [f for f in kit.delta(m).fields if f.path == "capacityProviderStrategy"]
    assert field.verdict is Verdict.UNOBSERVABLE
    assert "moto" in field.reason and "DescribeServices" in field.reason


POLICY: dict[str, Any] = {
    "serviceRef": "huntaze-onlyfans-scraper",
    "targetTracking": {
        "targetValue": 100,
        "customizedMetricSpecification": {"namespace": "AWS/SQS", "metricName": "ApproximateNumberOfMessagesVisible"},
    },
}


def test_service_desired_count_claimed_by_scaling_policy_is_ignored_with_reason(kit: Any) -> None:
    kit.manifest("ScalingPolicy", "scraper-depth", POLICY)  # in the stack: Application Auto Scaling owns the count
    m, _ = _stack(kit)
    aws.client("ecs").update_service(cluster="huntaze", service="huntaze-onlyfans-scraper", desiredCount=7)
    delta = kit.delta(m)
    [field] = [f for f in delta.fields if f.path == "desiredCount"]
    assert (field.verdict, field.desired, field.live) == (Verdict.IGNORED, 1, 7)
    assert "Application Auto Scaling via ScalingPolicy/scraper-depth" in field.reason
    writes = kit.writes("ecs")
    kit.reconcile(m)
    assert writes.calls == []
    assert not delta.has_drift


def test_service_desired_count_without_scaling_policy_is_drift_and_repaired(kit: Any) -> None:
    m, _ = _stack(kit)
    aws.client("ecs").update_service(cluster="huntaze", service="huntaze-onlyfans-scraper", desiredCount=7)
    [field] = [f for f in kit.delta(m).fields if f.path == "desiredCount"]
    assert (field.verdict, field.desired, field.live) == (Verdict.CHANGED, 1, 7)
    writes = kit.writes("ecs")
    live = kit.reconcile(m)
    assert writes.calls == ["UpdateService"]
    assert live.fields["desiredCount"] == 1
    assert not kit.delta(m).has_drift


def test_service_capacity_strategy_returned_by_api_is_compared_and_repaired(kit: Any) -> None:
    m, _ = _stack(kit)
    ecs = aws.client("ecs")
    hand = [{"capacityProvider": "FARGATE", "weight": 1, "base": 0}]
    ecs.update_service(cluster="huntaze", service="huntaze-onlyfans-scraper", capacityProviderStrategy=hand)
    [field] = [f for f in kit.delta(m).fields if f.top == "capacityProviderStrategy"]
    assert field.verdict is Verdict.CHANGED and field.live == hand, field
    writes = kit.writes("ecs")
    live = kit.reconcile(m)
    assert writes.calls == ["UpdateService"]
    assert live.fields["capacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE", "weight": 30, "base": 0},
        {"capacityProvider": "FARGATE_SPOT", "weight": 70, "base": 0},
    ]
    fields = {f.path: f.verdict for f in kit.delta(m).fields}
    assert fields["capacityProviderStrategy"] is Verdict.EQUAL, fields


def test_service_network_changed_behind_controller_is_repaired(kit: Any) -> None:
    m, live = _stack(kit)
    vpc = live.fields["networkConfiguration"]["awsvpcConfiguration"]
    aws.client("ecs").update_service(
        cluster="huntaze",
        service="huntaze-onlyfans-scraper",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": vpc["subnets"][:1],
                "securityGroups": vpc["securityGroups"],
                "assignPublicIp": "ENABLED",
            }
        },
    )
    assert kit.delta(m).changed_fields == ["networkConfiguration"]
    writes = kit.writes("ecs")
    kit.reconcile(m)
    assert writes.calls == ["UpdateService"]
    assert not kit.delta(m).has_drift


def test_service_new_task_definition_revision_rolls_the_service(kit: Any) -> None:
    m, _ = _stack(kit)
    changed = {**TASK, "containerDefinitions": [{"name": "playwright-scraper", "image": "scraper:2"}]}
    revision = kit.reconcile(kit.manifest("TaskDefinition", "huntaze-onlyfans-scraper", changed))
    assert [d.top for d in kit.delta(m).drift] == ["taskDefinition"]
    live = kit.reconcile(m)
    assert live.fields["taskDefinition"] == revision.outputs["arn"]


def test_service_list_owned_and_delete(kit: Any) -> None:
    _, live = _stack(kit)
    owned = handler("Service").list_owned(kit.ctx)
    assert [str(o.key) for o in owned] == ["Service/huntaze-onlyfans-scraper"]
    handler("Service").delete(live, kit.ctx)
    assert handler("Service").list_owned(kit.ctx) == []


@pytest.mark.parametrize(
    ("network", "message"),
    [
        ({"subnets": ["subnet-1"]}, "subnets and securityGroups"),
        ({"subnetsFrom": "default-vpc", "subnets": ["subnet-1"]}, "not both"),
    ],
)
def test_service_spec_incomplete_network_is_rejected(network: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        handler("Service").spec_model.model_validate(
            {**SERVICE, "networkConfiguration": {"awsvpcConfiguration": network}}
        )


DEPLOYMENT: dict[str, Any] = {
    "minimumHealthyPercent": 100,
    "maximumPercent": 200,
    "deploymentCircuitBreaker": {"enable": True, "rollback": True},
}
DEPLOYED = {**SERVICE, "deploymentConfiguration": DEPLOYMENT}
NATIVE = {**DEPLOYMENT, "alarms": {"alarmNames": [], "enable": False, "rollback": False}}


def test_service_deployment_configuration_dropped_by_moto_at_create_is_unobservable(kit: Any) -> None:
    m, live = _stack(kit, DEPLOYED)
    assert "deploymentConfiguration" not in live.fields  # moto neither stores nor returns it at CreateService
    [field] = [f for f in kit.delta(m).fields if f.top == "deploymentConfiguration"]
    assert field.verdict is Verdict.UNOBSERVABLE
    assert "moto drops it at CreateService" in field.reason


def test_service_deployment_configuration_changed_by_hand_is_drift_with_values_and_repaired(kit: Any) -> None:
    m, _ = _stack(kit, DEPLOYED)
    hand = {"minimumHealthyPercent": 50, "maximumPercent": 150,
            "deploymentCircuitBreaker": {"enable": False, "rollback": False}}
    aws.client("ecs").update_service(cluster="huntaze", service="huntaze-onlyfans-scraper",
                                     deploymentConfiguration=hand)
    changed = {f.path: (f.desired, f.live) for f in kit.delta(m).drift}
    assert changed == {
        "deploymentConfiguration.minimumHealthyPercent": (100, 50),
        "deploymentConfiguration.maximumPercent": (200, 150),
        "deploymentConfiguration.deploymentCircuitBreaker.enable": (True, False),
        "deploymentConfiguration.deploymentCircuitBreaker.rollback": (True, False),
    }, changed
    writes = kit.writes("ecs")
    live = kit.reconcile(m)
    assert writes.calls == ["UpdateService"]
    assert live.fields["deploymentConfiguration"] == NATIVE
    assert not kit.delta(m).has_drift


def test_service_update_carries_deployment_configuration_so_moto_shows_it(kit: Any) -> None:
    m, _ = _stack(kit, DEPLOYED)
    changed = {**TASK, "containerDefinitions": [{"name": "playwright-scraper", "image": "scraper:2"}]}
    kit.reconcile(kit.manifest("TaskDefinition", "huntaze-onlyfans-scraper", changed))
    live = kit.reconcile(m)  # UpdateService(taskDefinition): the deployment's breaker goes along
    assert live.fields["deploymentConfiguration"] == NATIVE
    fields = {f.top: f.verdict for f in kit.delta(m).fields}
    assert fields["deploymentConfiguration"] is Verdict.EQUAL, fields


def test_service_deployment_alarms_switched_on_by_hand_are_switched_off_by_name(kit: Any) -> None:
    m, _ = _stack(kit, DEPLOYED)
    hand = {**DEPLOYMENT, "alarms": {"alarmNames": ["scraper-failure-rate-critical"], "enable": True,
                                     "rollback": True}}
    aws.client("ecs").update_service(cluster="huntaze", service="huntaze-onlyfans-scraper",
                                     deploymentConfiguration=hand)
    changed = {f.path: (f.desired, f.live) for f in kit.delta(m).drift}
    assert changed["deploymentConfiguration.alarms.enable"] == (False, True), changed
    live = kit.reconcile(m)
    assert live.fields["deploymentConfiguration"] == NATIVE
    raw = aws.client("ecs").describe_services(cluster="huntaze", services=["huntaze-onlyfans-scraper"])
    assert raw["services"][0]["deploymentConfiguration"]["alarms"] == {
        "alarmNames": ["scraper-failure-rate-critical"], "enable": False, "rollback": False}
    assert not kit.delta(m).has_drift


@pytest.mark.parametrize(
    ("deployment", "messages"),
    [
        ({"minimumHealthyPercent": 101}, ["deploymentConfiguration.minimumHealthyPercent", "must be 0..100"]),
        ({"maximumPercent": 90}, ["deploymentConfiguration.maximumPercent", "must be 100..200"]),
        ({"maximumPercent": 100}, ["neither start a new task nor stop an old one", "raise maximumPercent"]),
        ({"deploymentCircuitBreaker": {"enable": False, "rollback": True}},
         ["deploymentConfiguration.deploymentCircuitBreaker", "set enable: true or rollback: false"]),
        ({"deploymentCircuitBreaker": {"enable": True}},
         ["deploymentConfiguration.deploymentCircuitBreaker.rollback", "Field required"]),
        ({"alarms": {"alarmNames": [], "enable": True, "rollback": True}},
         ["deploymentConfiguration.alarms", "list at least one name in alarmNames"]),
    ],
)
def test_service_spec_bad_deployment_configuration_names_field_and_fix(
    deployment: dict[str, Any], messages: list[str]
) -> None:
    with pytest.raises(ValidationError) as caught:
        handler("Service").spec_model.model_validate({**SERVICE, "deploymentConfiguration": deployment})
    text = str(caught.value)
    assert all(m in text for m in messages), text
