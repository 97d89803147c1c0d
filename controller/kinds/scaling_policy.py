"""Kind ``ScalingPolicy``: an Application Auto Scaling target (min/max tasks) plus its target-tracking policy.

Registered with `controller.kinds.registry`; the reconciler calls the verbs. One manifest covers both AWS
objects because neither makes sense alone: RegisterScalableTarget sets the service's min/max desired count
and PutScalingPolicy the target tracking (the seed: keep the FIFO queue's ApproximateNumberOfMessagesVisible
near 100, scale in after 300 s, out after 60 s). ``serviceRef`` names the Service; its ``resourceId`` output
(``service/CLUSTER/NAME``) is the scalable target.

While a policy targets a service, Application Auto Scaling owns the service's desiredCount: the policy claims
``Service/<serviceRef>.desiredCount`` (`claims`), so the Service ignores it only in a stack holding this policy.
It also owns the ``TargetTracking-*`` CloudWatch alarms it creates (the Alarm kind never lists them).

Ownership: a scalable target is tagged at registration, but moto's ListTagsForResource for Application Auto
Scaling fails (HTTP 500), so ownership is read from the ECS service the target scales: a policy on a service
this stack owns is this stack's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from controller.errors import TemporaryError
from controller.kinds.base import Context, FieldClaim, FieldPolicy, FieldRule, Kind, LiveResource, spec_of
from controller.kinds.prefetch import tags_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import tags_from_list, user_tags
from controller.ownership import desired_tags, is_owned
from controller.specs.fields import RefTo, SpecModel, in_range

NAMESPACE = "ecs"
DIMENSION = "ecs:service:DesiredCount"


class CustomizedMetric(SpecModel):
    namespace: str = Field(min_length=1)
    metric_name: str = Field(min_length=1)
    statistic: Literal["Average", "Minimum", "Maximum", "SampleCount", "Sum"] = "Average"
    dimensions: dict[str, str] = Field(default_factory=dict)
    unit: str | None = None


class TargetTracking(SpecModel):
    target_value: float = Field(gt=0)
    scale_in_cooldown: Annotated[int, AfterValidator(in_range(0, 86400))] = 300
    scale_out_cooldown: Annotated[int, AfterValidator(in_range(0, 86400))] = 300
    disable_scale_in: bool = False
    customized_metric_specification: CustomizedMetric


class ScalingPolicySpec(SpecModel):
    service_ref: Annotated[str, RefTo("Service")]
    policy_name: str | None = Field(None, pattern=r"^[^:/]{1,256}$")
    min_capacity: Annotated[int, AfterValidator(in_range(0, 5000))] = 1
    max_capacity: Annotated[int, AfterValidator(in_range(1, 5000))] = 10
    target_tracking: TargetTracking
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _capacity_order(self) -> ScalingPolicySpec:
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"minCapacity ({self.min_capacity}) must be <= maxCapacity ({self.max_capacity})")
        return self


def policy_name(manifest: Manifest) -> str:
    spec = spec_of(manifest, ScalingPolicySpec)
    return spec.policy_name or manifest.metadata.name


def _tracking(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """TargetTrackingScalingPolicyConfiguration → compared shape (floats, sorted dimensions, defaults filled)."""
    if not config:
        return None
    metric = config.get("CustomizedMetricSpecification") or {}
    customized = {
        "Namespace": metric.get("Namespace"),
        "MetricName": metric.get("MetricName"),
        "Statistic": metric.get("Statistic"),
        "Dimensions": sorted(
            ({"Name": d["Name"], "Value": d["Value"]} for d in metric.get("Dimensions") or []),
            key=lambda d: (d["Name"], d["Value"]),
        ),
    }
    if metric.get("Unit"):
        customized["Unit"] = metric["Unit"]
    return {
        "TargetValue": float(config["TargetValue"]),
        "ScaleInCooldown": int(config.get("ScaleInCooldown", 300)),
        "ScaleOutCooldown": int(config.get("ScaleOutCooldown", 300)),
        "DisableScaleIn": bool(config.get("DisableScaleIn", False)),
        "CustomizedMetricSpecification": customized,
    }


def _spec_tracking(tracking: TargetTracking) -> dict[str, Any]:
    metric = tracking.customized_metric_specification
    api = {
        "TargetValue": tracking.target_value,
        "ScaleInCooldown": tracking.scale_in_cooldown,
        "ScaleOutCooldown": tracking.scale_out_cooldown,
        "DisableScaleIn": tracking.disable_scale_in,
        "CustomizedMetricSpecification": {
            "Namespace": metric.namespace,
            "MetricName": metric.metric_name,
            "Statistic": metric.statistic,
            "Dimensions": [{"Name": k, "Value": v} for k, v in metric.dimensions.items()],
            "Unit": metric.unit,
        },
    }
    tracked = _tracking(api)
    assert tracked is not None
    return tracked


@register
class ScalingPolicyKind(Kind[ScalingPolicySpec]):
    kind = "ScalingPolicy"
    spec_model = ScalingPolicySpec
    not_found_codes = frozenset({"ObjectNotFoundException", "ClusterNotFoundException"})
    rules = {
        "resourceId": FieldRule(FieldPolicy.IMMUTABLE, "a policy belongs to one scalable target (one service)"),
        "policyName": FieldRule(FieldPolicy.IMMUTABLE, "a scaling policy is identified by its name"),
    }

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        spec = self.spec(manifest)
        return [ResourceKey(kind="Service", name=spec.service_ref)]

    def claims(self, manifest: Manifest) -> list[FieldClaim]:
        spec = self.spec(manifest)
        reason = (
            f"owned by Application Auto Scaling via {manifest.key} (it sets the count between minCapacity"
            f" {spec.min_capacity} and maxCapacity {spec.max_capacity}); the spec's value is used only when the"
            " service is created"
        )
        bounds = (float(spec.min_capacity), float(spec.max_capacity))
        return [FieldClaim(ResourceKey(kind="Service", name=spec.service_ref), "desiredCount", reason, bounds)]

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        return {
            "resourceId": self._resource_id(manifest, ctx),
            "policyName": policy_name(manifest),
            "minCapacity": spec.min_capacity,
            "maxCapacity": spec.max_capacity,
            "targetTracking": _spec_tracking(spec.target_tracking),
        }

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        resource_id = self._resource_id(manifest, ctx)
        if not resource_id.startswith("service/"):
            return None  # a dry run: the service is not created yet, so neither is its scalable target
        return self._find(ctx, resource_id, policy_name(manifest), manifest.key)

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        spec = self.spec(manifest)
        self._register_target(desired, ctx, desired_tags(manifest, ctx.stack, spec.tags))
        self._put_policy(desired, ctx)
        return self._reread(manifest, desired, ctx)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        if {"minCapacity", "maxCapacity"} & set(changed):
            self._register_target(desired, ctx, None)
        if "targetTracking" in changed:
            self._put_policy(desired, ctx)
        return self._reread(manifest, desired, ctx)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        aas = ctx.client("application-autoscaling")
        target = {
            "ServiceNamespace": NAMESPACE,
            "ResourceId": live.fields["resourceId"],
            "ScalableDimension": DIMENSION,
        }
        with self.absent_ok():
            aas.delete_scaling_policy(**target, PolicyName=live.fields["policyName"])
        with self.absent_ok():
            aas.deregister_scalable_target(**target)

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        aas = ctx.client("application-autoscaling")
        owned: list[LiveResource] = []
        pages = aas.get_paginator("describe_scaling_policies").paginate(ServiceNamespace=NAMESPACE)
        for policy in (p for page in pages for p in page.get("ScalingPolicies", [])):
            if policy.get("ScalableDimension") != DIMENSION:
                continue
            live = self._find(ctx, policy["ResourceId"], policy["PolicyName"], None)
            if live is not None and live.owned:
                owned.append(live)
        return owned

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        return "the service keeps its current task count but stops scaling until the new policy exists"

    def _resource_id(self, manifest: Manifest, ctx: Context) -> str:
        spec = self.spec(manifest)
        return ctx.output(ResourceKey(kind="Service", name=spec.service_ref), "resourceId")

    def _register_target(self, desired: dict[str, Any], ctx: Context, tags: dict[str, str] | None) -> None:
        args: dict[str, Any] = {
            "ServiceNamespace": NAMESPACE,
            "ResourceId": desired["resourceId"],
            "ScalableDimension": DIMENSION,
            "MinCapacity": desired["minCapacity"],
            "MaxCapacity": desired["maxCapacity"],
        }
        if tags is not None:
            args["Tags"] = tags
        ctx.client("application-autoscaling").register_scalable_target(**args)

    def _put_policy(self, desired: dict[str, Any], ctx: Context) -> None:
        ctx.client("application-autoscaling").put_scaling_policy(
            PolicyName=desired["policyName"],
            ServiceNamespace=NAMESPACE,
            ResourceId=desired["resourceId"],
            ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration=desired["targetTracking"],
        )

    def _find(self, ctx: Context, resource_id: str, name: str, key: ResourceKey | None) -> LiveResource | None:
        aas = ctx.client("application-autoscaling")
        targets = aas.describe_scalable_targets(
            ServiceNamespace=NAMESPACE, ResourceIds=[resource_id], ScalableDimension=DIMENSION
        ).get("ScalableTargets", [])
        if not targets:
            return None
        policies = aas.describe_scaling_policies(
            ServiceNamespace=NAMESPACE, ResourceId=resource_id, ScalableDimension=DIMENSION, PolicyNames=[name]
        ).get("ScalingPolicies", [])
        policy = policies[0] if policies else {}
        tags = self._service_tags(ctx, resource_id)
        return LiveResource(
            key=key or ResourceKey(kind="ScalingPolicy", name=name),
            physical_id=policy.get("PolicyARN") or targets[0].get("ScalableTargetARN") or resource_id,
            fields={
                "resourceId": resource_id,
                "policyName": name,
                "minCapacity": targets[0]["MinCapacity"],
                "maxCapacity": targets[0]["MaxCapacity"],
                "targetTracking": _tracking(policy.get("TargetTrackingScalingPolicyConfiguration")),
            },
            outputs={"arn": policy.get("PolicyARN", ""), "name": name, "resourceId": resource_id},
            tags=tags,
            owned=is_owned(tags, ctx.stack),
        )

    def _service_tags(self, ctx: Context, resource_id: str) -> dict[str, str]:
        """Tags of the ECS service a ``service/CLUSTER/NAME`` target scales ({} if it is gone)."""
        cached = tags_of(ctx, f"arn:aws:ecs:{ctx.region}:{ctx.account_id}:{resource_id}")
        if cached is not None:
            return user_tags(cached)
        _, cluster, service = resource_id.split("/", 2)
        found = self.read_or_none(ctx.client("ecs").describe_services, cluster=cluster, services=[service],
                                  include=["TAGS"])
        services = (found or {}).get("services", [])
        return user_tags(tags_from_list(services[0].get("tags"))) if services else {}

    def _reread(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        live = self._find(ctx, desired["resourceId"], desired["policyName"], manifest.key)
        if live is None:
            raise TemporaryError(str(manifest.key), "scalable target not visible yet after the write", delay=2)
        return live
