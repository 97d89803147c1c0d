"""Kind ``Service``: an ECS service in the native CreateService shape, running a TaskDefinition on a Cluster.

Registered with `controller.kinds.registry`; the reconciler calls the verbs. The spec holds CreateService's
input (camelCase) with references instead of ARNs: ``clusterRef`` (Cluster), ``taskDefinitionRef``
(TaskDefinition: its latest ACTIVE revision). ``networkConfiguration.awsvpcConfiguration`` names subnets and
security groups, or says ``subnetsFrom: default-vpc`` to use the default VPC's subnets and its ``default``
security group (the local environment: moto's default VPC has them, and CreateService with awsvpc refuses
subnets or security groups that do not exist).

Fields owned by others or invisible here are reported, never "fixed":
- ``desiredCount`` belongs to Application Auto Scaling while a ScalingPolicy of the stack targets the service
  (the seed's does): that policy claims it (`KindHandler.claims`), so it is IGNORED and used at creation only.
  Without such a policy a desiredCount changed by hand is drift like any other field, and apply sets it back.
- ``capacityProviderStrategy`` is not returned by moto's DescribeServices after CreateService (it reports
  launchType EC2): while the live answer lacks it, it is reported unobservable; when the API returns it (real
  AWS, or moto after an UpdateService) it is compared, and a change is applied with a new deployment.
- ``deploymentConfiguration`` (rolling update percentages, the deployment circuit breaker, alarm rollback) is
  likewise dropped by moto at CreateService (neither stored nor returned) but stored and returned after an
  UpdateService that sets it: the same rule applies. Every UpdateService the kind sends carries the spec's
  deploymentConfiguration (on AWS a no-op while unchanged), so from the first update on (a new task definition
  revision, typically) moto shows it, and the local plane's service runner (`localplane.service_runner`) applies
  the breaker it reads there. Omitted in the spec, it means ECS's defaults (100 / 200, breaker and alarms off),
  which is what AWS returns for a service created without it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from controller import rollback_mark
from controller.errors import PermanentError, TemporaryError
from controller.kinds.base import Context, FieldPolicy, FieldRule, Hold, Kind, LiveResource, check_name, spec_of
from controller.kinds.prefetch import batches, put_found
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import sort_by, tags_from_list, tags_to_list, user_tags
from controller.ownership import desired_tags, is_owned, owned_key, tag_changes
from controller.specs.fields import RefTo, SpecModel, in_range, max_chars, simple_name

DEFAULT_VPC = "default-vpc"
_SERVICES = "service"
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")


class StrategyItem(SpecModel):
    capacity_provider: Literal["FARGATE", "FARGATE_SPOT"]
    weight: Annotated[int, AfterValidator(in_range(0, 1000))] = 0
    base: Annotated[int, AfterValidator(in_range(0, 100000))] = 0


class AwsVpcConfiguration(SpecModel):
    subnets: list[str] = Field(default_factory=list, max_length=16)
    security_groups: list[str] = Field(default_factory=list, max_length=5)
    assign_public_ip: Literal["ENABLED", "DISABLED"] = "DISABLED"
    subnets_from: Literal["default-vpc"] | None = None

    @model_validator(mode="after")
    def _subnets_given_once(self) -> AwsVpcConfiguration:
        if self.subnets_from and (self.subnets or self.security_groups):
            raise ValueError("set subnetsFrom or subnets/securityGroups, not both")
        if not self.subnets_from and not (self.subnets and self.security_groups):
            raise ValueError("awsvpc needs subnets and securityGroups (or subnetsFrom: default-vpc)")
        return self


class NetworkConfiguration(SpecModel):
    awsvpc_configuration: AwsVpcConfiguration


class CircuitBreaker(SpecModel):
    """ECS's deployment circuit breaker: stop a rolling update whose tasks keep failing, and roll back."""

    enable: bool
    rollback: bool

    @model_validator(mode="after")
    def _rollback_needs_enable(self) -> CircuitBreaker:
        if self.rollback and not self.enable:
            raise ValueError("rollback: true needs enable: true (only a tripped breaker rolls back); "
                             "set enable: true or rollback: false")
        return self


class DeploymentAlarms(SpecModel):
    """CloudWatch alarms ECS watches during a deployment; one in ALARM fails it (and rolls back, if set)."""

    alarm_names: list[Annotated[str, AfterValidator(max_chars("alarm name", 255))]] = Field(
        default_factory=list, max_length=10)
    enable: bool
    rollback: bool

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentAlarms:
        if self.enable and not self.alarm_names:
            raise ValueError("enable: true watches no alarm: list at least one name in alarmNames, "
                             "or set enable: false")
        if self.rollback and not self.enable:
            raise ValueError("rollback: true needs enable: true; set enable: true or rollback: false")
        return self


class DeploymentConfiguration(SpecModel):
    """CreateService's ``deploymentConfiguration`` for the rolling update (ECS) deployment controller."""

    minimum_healthy_percent: Annotated[int, AfterValidator(in_range(0, 100))] = 100
    maximum_percent: Annotated[int, AfterValidator(in_range(100, 200))] = 200
    deployment_circuit_breaker: CircuitBreaker = CircuitBreaker(enable=False, rollback=False)
    alarms: DeploymentAlarms = DeploymentAlarms(enable=False, rollback=False)

    @model_validator(mode="after")
    def _can_progress(self) -> DeploymentConfiguration:
        if self.minimum_healthy_percent == 100 and self.maximum_percent == 100:
            raise ValueError("minimumHealthyPercent 100 with maximumPercent 100: ECS could neither start a new "
                             "task nor stop an old one, so no deployment would progress; raise maximumPercent "
                             "(e.g. 200) or lower minimumHealthyPercent")
        return self

    def native(self) -> dict[str, Any]:
        return _deployment(self.model_dump(by_alias=True))


SERVICE_NAME = simple_name("service name")


class ServiceSpec(SpecModel):
    service_name: Annotated[str, AfterValidator(SERVICE_NAME)] | None = None  # defaults to metadata.name
    cluster_ref: Annotated[str, RefTo("Cluster")]
    task_definition_ref: Annotated[str, RefTo("TaskDefinition")]
    desired_count: Annotated[int, AfterValidator(in_range(0, 5000))] = 1
    capacity_provider_strategy: list[StrategyItem] = Field(min_length=1, max_length=20)
    platform_version: str = "LATEST"
    network_configuration: NetworkConfiguration
    propagate_tags: Literal["SERVICE", "TASK_DEFINITION", "NONE"] = "SERVICE"
    deployment_configuration: DeploymentConfiguration = DeploymentConfiguration()
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _capacity(self) -> ServiceSpec:
        if not any(s.weight for s in self.capacity_provider_strategy):
            raise ValueError("capacityProviderStrategy: at least one provider needs a weight above 0")
        return self


def service_name(manifest: Manifest) -> str:
    spec = spec_of(manifest, ServiceSpec)
    return spec.service_name or manifest.metadata.name


def autoscaling_resource_id(cluster: str, service: str) -> str:
    """Application Auto Scaling's ResourceId for an ECS service."""
    return f"service/{cluster}/{service}"


def default_vpc_network(ec2: Any) -> dict[str, Any]:
    """Subnets of the default VPC and its ``default`` security group, or a PermanentError saying what to do."""
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}]).get("Vpcs", [])
    if not vpcs:
        raise PermanentError("Service", "subnetsFrom: default-vpc, but this account has no default VPC; name subnets")
    vpc_id = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]).get("Subnets", [])
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    ).get("SecurityGroups", [])
    return {
        "subnets": sorted(s["SubnetId"] for s in subnets),
        "securityGroups": sorted(g["GroupId"] for g in groups),
    }


def _network(config: dict[str, Any] | None) -> dict[str, Any] | None:
    vpc = (config or {}).get("awsvpcConfiguration")
    if not vpc:
        return None
    return {
        "awsvpcConfiguration": {
            "subnets": sorted(vpc.get("subnets", [])),
            "securityGroups": sorted(vpc.get("securityGroups", [])),
            "assignPublicIp": vpc.get("assignPublicIp", "DISABLED"),
        }
    }


def _strategy(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return sort_by(
        (
            {"capacityProvider": i["capacityProvider"], "weight": i.get("weight", 0), "base": i.get("base", 0)}
            for i in items or []
        ),
        "capacityProvider",
    )


def _deployment(config: dict[str, Any] | None) -> dict[str, Any]:
    """deploymentConfiguration with ECS's defaults filled in (AWS leaves out the parts never set)."""
    config = config or {}
    breaker = config.get("deploymentCircuitBreaker") or {}
    alarms = config.get("alarms") or {}
    if not alarms.get("enable"):
        alarms = {}  # names kept with enable false watch nothing: not a difference worth a write
    return {
        "minimumHealthyPercent": int(config.get("minimumHealthyPercent", 100)),
        "maximumPercent": int(config.get("maximumPercent", 200)),
        "deploymentCircuitBreaker": {
            "enable": bool(breaker.get("enable", False)), "rollback": bool(breaker.get("rollback", False)),
        },
        "alarms": {
            "alarmNames": sorted(alarms.get("alarmNames", [])),
            "enable": bool(alarms.get("enable", False)),
            "rollback": bool(alarms.get("rollback", False)),
        },
    }


def _deployment_for_api(desired: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    """The normalized deploymentConfiguration as CreateService/UpdateService take it.

    ``alarms`` is left out while off (the API wants alarm names in it), unless the live service watches alarms:
    then it is sent with their names and ``enable: false`` to switch them off.
    """
    out = dict(desired)
    if not out["alarms"]["enable"]:
        live_alarms = (live or {}).get("alarms") or {}
        if live_alarms.get("enable"):
            out["alarms"] = {"alarmNames": live_alarms["alarmNames"], "enable": False, "rollback": False}
        else:
            del out["alarms"]
    return out


def _fields(service: dict[str, Any], cluster: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "serviceName": service["serviceName"],
        "cluster": cluster,
        "taskDefinition": service.get("taskDefinition"),
        "desiredCount": service.get("desiredCount"),
        "networkConfiguration": _network(service.get("networkConfiguration")),
        "platformVersion": service.get("platformVersion") or "LATEST",
        "propagateTags": service.get("propagateTags") or "NONE",
    }
    if "capacityProviderStrategy" in service:  # absent from moto's answer: leave the field out, not empty
        fields["capacityProviderStrategy"] = _strategy(service["capacityProviderStrategy"])
    if "deploymentConfiguration" in service:  # absent from moto's answer after CreateService, like the above
        fields["deploymentConfiguration"] = _deployment(service["deploymentConfiguration"])
    return fields


@register
class ServiceKind(Kind[ServiceSpec]):
    kind = "Service"
    spec_model = ServiceSpec
    not_found_codes = frozenset({"ServiceNotFoundException", "ServiceNotActiveException", "ClusterNotFoundException"})
    rules = {
        "serviceName": FieldRule(FieldPolicy.IMMUTABLE, "ECS cannot rename a service"),
        "cluster": FieldRule(FieldPolicy.IMMUTABLE, "a service cannot move to another cluster"),
        "capacityProviderStrategy": FieldRule(
            FieldPolicy.UNOBSERVABLE_WHEN_ABSENT,
            "DescribeServices did not return capacityProviderStrategy (moto leaves it out after CreateService and"
            " reports launchType EC2); applied at creation, compared whenever the API returns it",
        ),
        "deploymentConfiguration": FieldRule(
            FieldPolicy.UNOBSERVABLE_WHEN_ABSENT,
            "DescribeServices did not return deploymentConfiguration (moto drops it at CreateService and shows it"
            " after an UpdateService that sets it, which every update by this controller does); applied at"
            " creation, compared whenever the API returns it",
        ),
    }

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        spec = self.spec(manifest)
        return check_name(manifest, spec.service_name, service_name(manifest), SERVICE_NAME, "serviceName")

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        spec = self.spec(manifest)
        return [
            ResourceKey(kind="Cluster", name=spec.cluster_ref),
            ResourceKey(kind="TaskDefinition", name=spec.task_definition_ref),
        ]

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        vpc = spec.network_configuration.awsvpc_configuration
        network = {"subnets": vpc.subnets, "securityGroups": vpc.security_groups}
        if vpc.subnets_from == DEFAULT_VPC:
            network = ctx.prefetched.memo("default-vpc", ctx.region, lambda: default_vpc_network(ctx.client("ec2")))
        fields = _fields(
            {
                "serviceName": service_name(manifest),
                "taskDefinition": ctx.output(ResourceKey(kind="TaskDefinition", name=spec.task_definition_ref)),
                "desiredCount": spec.desired_count,
                "networkConfiguration": {"awsvpcConfiguration": {**network, "assignPublicIp": vpc.assign_public_ip}},
                "platformVersion": spec.platform_version,
                "propagateTags": spec.propagate_tags,
                "capacityProviderStrategy": [s.model_dump(by_alias=True) for s in spec.capacity_provider_strategy],
                "deploymentConfiguration": spec.deployment_configuration.native(),
            },
            self._cluster(manifest, ctx),
        )
        return {**fields, "tags": desired_tags(manifest, ctx.stack, spec.tags)}

    def prefetch(self, manifests: Sequence[Manifest], ctx: Context) -> None:
        """The tier's services with one DescribeServices per cluster and 10 services (the API's limit)."""
        by_cluster: dict[str, list[str]] = {}
        for manifest in manifests:
            try:
                cluster = self._cluster(manifest, ctx)
            except LookupError:  # its cluster failed this pass: the reconciler skips this service anyway
                continue
            if _CLUSTER_NAME.fullmatch(cluster):  # not "(known after apply)" in a dry run
                by_cluster.setdefault(cluster, []).append(service_name(manifest))
        ecs = ctx.client("ecs")
        for cluster, names in by_cluster.items():
            for batch in batches(names, 10):
                answer = self.read_or_none(ecs.describe_services, cluster=cluster, services=batch, include=["TAGS"])
                services = (answer or {}).get("services", [])
                active = {f"{cluster}/{s['serviceName']}": s for s in services if s.get("status") == "ACTIVE"}
                put_found(ctx, _SERVICES, (f"{cluster}/{n}" for n in batch), active)

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        cluster = self._cluster(manifest, ctx)
        if not _CLUSTER_NAME.fullmatch(cluster):
            return None  # a dry run: the cluster is not created yet, so neither is the service
        return self._find(ctx, cluster, service_name(manifest), manifest.key)

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        args: dict[str, Any] = {
            "cluster": desired["cluster"],
            "serviceName": desired["serviceName"],
            "taskDefinition": desired["taskDefinition"],
            "desiredCount": desired["desiredCount"],
            "networkConfiguration": desired["networkConfiguration"],
            "platformVersion": desired["platformVersion"],
            "propagateTags": desired["propagateTags"],
            "capacityProviderStrategy": desired["capacityProviderStrategy"],
            "deploymentConfiguration": _deployment_for_api(desired["deploymentConfiguration"], None),
            "schedulingStrategy": "REPLICA",
            "tags": tags_to_list(desired["tags"], "key", "value"),
        }
        ctx.client("ecs").create_service(**args)
        return self._reread(manifest, ctx, desired)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        ecs = ctx.client("ecs")
        # desiredCount arrives here only when no ScalingPolicy claims it; a new capacity provider strategy
        # takes effect through a new deployment.
        args: dict[str, Any] = {name: desired[name] for name in changed if name in _UPDATABLE}
        if "capacityProviderStrategy" in args:
            args["forceNewDeployment"] = True
        if "taskDefinition" in args and live.hold is not None:
            # Another revision is released: the rollback mark of the one rolled back has served its purpose.
            rollback_mark.clear_service(ecs, live.physical_id)
        if args:
            # Always sent along: moto drops it at CreateService and shows it only once an update sets it (on AWS
            # an unchanged one is a no-op), so the local plane sees the circuit breaker of the deployment.
            args["deploymentConfiguration"] = _deployment_for_api(
                desired["deploymentConfiguration"], live.fields.get("deploymentConfiguration"))
            ecs.update_service(cluster=desired["cluster"], service=live.physical_id, **args)
        if "tags" in changed:
            to_set, to_remove = tag_changes(desired["tags"], live.tags)
            if to_set:
                ecs.tag_resource(resourceArn=live.physical_id, tags=tags_to_list(to_set, "key", "value"))
            if to_remove:
                ecs.untag_resource(resourceArn=live.physical_id, tagKeys=to_remove)
        return self._reread(manifest, ctx, desired)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        with self.absent_ok():
            ctx.client("ecs").delete_service(cluster=live.fields["cluster"], service=live.physical_id, force=True)

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        ecs = ctx.client("ecs")
        owned: list[LiveResource] = []
        for page in ecs.get_paginator("list_clusters").paginate():
            for cluster_arn in page.get("clusterArns", []):
                cluster = cluster_arn.rsplit("/", 1)[-1]
                arns = [
                    a for p in ecs.get_paginator("list_services").paginate(cluster=cluster) for a in p["serviceArns"]
                ]
                for start in range(0, len(arns), 10):
                    found = ecs.describe_services(cluster=cluster, services=arns[start : start + 10], include=["TAGS"])
                    for service in found.get("services", []):
                        live = self._live(service, cluster, None, ctx)
                        if service.get("status") == "ACTIVE" and live.owned:
                            owned.append(live)
        return owned

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        return (
            f"service {live.fields['serviceName']}: its running tasks are stopped (in-flight jobs are released to"
            " the queue) and it is unavailable until the new service's tasks start"
        )

    def _cluster(self, manifest: Manifest, ctx: Context) -> str:
        spec = self.spec(manifest)
        return ctx.output(ResourceKey(kind="Cluster", name=spec.cluster_ref), "name")

    def _find(self, ctx: Context, cluster: str, name: str, key: ResourceKey | None) -> LiveResource | None:
        prefetched, service = ctx.prefetched.take(_SERVICES, f"{cluster}/{name}")
        if not prefetched:
            found = self.read_or_none(ctx.client("ecs").describe_services, cluster=cluster, services=[name],
                                      include=["TAGS"])
            active = [s for s in (found or {}).get("services", []) if s.get("status") == "ACTIVE"]
            service = active[0] if active else None
        return None if service is None else self._live(service, cluster, key, ctx)

    def _live(self, service: dict[str, Any], cluster: str, key: ResourceKey | None, ctx: Context) -> LiveResource:
        tags, mark = rollback_mark.split(user_tags(tags_from_list(service.get("tags"))))
        name = service["serviceName"]
        return LiveResource(
            key=key or owned_key(tags) or ResourceKey(kind="Service", name=name),
            physical_id=service["serviceArn"],
            fields={**_fields(service, cluster), "tags": tags},
            outputs={
                "arn": service["serviceArn"],
                "name": name,
                "cluster": cluster,
                "resourceId": autoscaling_resource_id(cluster, name),
            },
            tags=tags,
            owned=is_owned(tags, ctx.stack),
            hold=_hold(service, mark or rollback_mark.from_deployments(service)),
        )

    def _reread(self, manifest: Manifest, ctx: Context, desired: dict[str, Any]) -> LiveResource:
        live = self._find(ctx, desired["cluster"], desired["serviceName"], manifest.key)
        if live is None:
            raise TemporaryError(str(manifest.key), "service not visible yet after the write", delay=2)
        return live


def _hold(service: dict[str, Any], mark: rollback_mark.RollbackMark | None) -> Hold | None:
    """Held while the service runs another revision than the one rolled back (the reconciler checks that the
    spec still asks for that one)."""
    if mark is None or mark.rolled_back == service.get("taskDefinition"):
        return None
    name = service["serviceName"]
    who = "rolled back by `huntazectl rollout undo`" if mark.by == rollback_mark.ON_CALL else mark.reason
    return Hold(
        fields=("taskDefinition",),
        while_desired={"taskDefinition": mark.rolled_back},
        rolled_back=mark.rolled_back.rsplit("/", 1)[-1],
        reason=f"{who}{', at ' + mark.at if mark.at else ''}; running {service['taskDefinition'].rsplit('/', 1)[-1]}",
        next_step=(f"next: fix the TaskDefinition spec and apply (its new revision is released), or see "
                   f"`huntazectl rollout status service {name}`"),
    )


_UPDATABLE = (
    "taskDefinition", "desiredCount", "capacityProviderStrategy", "networkConfiguration", "platformVersion",
    "propagateTags", "deploymentConfiguration",
)
