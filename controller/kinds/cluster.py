"""Kind ``Cluster``: an ECS cluster with the Fargate capacity providers the scraper service runs on.

Registered with `controller.kinds.registry`; the reconciler calls the verbs. The seed runs the scraper on
FARGATE_SPOT (70 %) and FARGATE (30 %): the cluster must carry both providers before a service can use them.
Fields compared: the provider list (order-free), the default strategy (``base`` defaults to 0, as ECS
does) and Container Insights (``disabled`` when ECS returns no setting, its default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from controller.errors import TemporaryError
from controller.kinds.base import Context, FieldPolicy, FieldRule, Kind, LiveResource, check_name, spec_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import sort_by, tags_from_list, tags_to_list, user_tags
from controller.ownership import desired_tags, is_owned, owned_key, tag_changes
from controller.retrying import error_code
from controller.specs.fields import SpecModel, in_range, simple_name

CapacityProvider = Literal["FARGATE", "FARGATE_SPOT"]


def _both_providers() -> list[CapacityProvider]:
    return ["FARGATE", "FARGATE_SPOT"]


class StrategyItem(SpecModel):
    capacity_provider: CapacityProvider
    weight: Annotated[int, AfterValidator(in_range(0, 1000))] = 0
    base: Annotated[int, AfterValidator(in_range(0, 100000))] = 0


CLUSTER_NAME = simple_name("cluster name")


class ClusterSpec(SpecModel):
    cluster_name: Annotated[str, AfterValidator(CLUSTER_NAME)] | None = None  # defaults to metadata.name
    capacity_providers: list[CapacityProvider] = Field(default_factory=_both_providers)
    default_capacity_provider_strategy: list[StrategyItem] = Field(default_factory=list)
    container_insights: Literal["enabled", "disabled"] = "disabled"
    tags: dict[str, str] = Field(default_factory=dict)


def cluster_name(manifest: Manifest) -> str:
    spec = spec_of(manifest, ClusterSpec)
    return spec.cluster_name or manifest.metadata.name


def _strategy(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return sort_by(
        (
            {
                "capacityProvider": i["capacityProvider"],
                "weight": i.get("weight", 0),
                "base": i.get("base", 0),
            }
            for i in items or []
        ),
        "capacityProvider",
    )


def _insights(settings: list[dict[str, str]] | None) -> str:
    for setting in settings or []:
        if setting.get("name") == "containerInsights":
            return setting.get("value", "disabled")
    return "disabled"


def _live(key: ResourceKey | None, cluster: dict[str, Any], stack: str) -> LiveResource:
    tags = user_tags(tags_from_list(cluster.get("tags")))
    return LiveResource(
        key=key or owned_key(tags) or ResourceKey(kind="Cluster", name=cluster["clusterName"]),
        physical_id=cluster["clusterArn"],
        fields={
            "clusterName": cluster["clusterName"],
            "capacityProviders": sorted(cluster.get("capacityProviders", [])),
            "defaultCapacityProviderStrategy": _strategy(cluster.get("defaultCapacityProviderStrategy")),
            "containerInsights": _insights(cluster.get("settings")),
            "tags": tags,
        },
        outputs={"arn": cluster["clusterArn"], "name": cluster["clusterName"]},
        tags=tags,
        owned=is_owned(tags, stack),
    )


def find_cluster_by_name(ecs: Any, name: str) -> dict[str, Any] | None:
    """The ACTIVE cluster called `name` (ECS keeps INACTIVE ones visible for a while after deletion)."""
    found = ecs.describe_clusters(clusters=[name], include=["TAGS", "SETTINGS"]).get("clusters", [])
    active = [c for c in found if c.get("status") == "ACTIVE"]
    return active[0] if active else None


def retag(ecs: Any, arn: str, desired: dict[str, str], live: dict[str, str]) -> None:
    """Make an ECS resource's tags equal `desired` (ECS tags are ``[{key, value}]``)."""
    to_set, to_remove = tag_changes(desired, live)
    if to_set:
        ecs.tag_resource(resourceArn=arn, tags=tags_to_list(to_set, "key", "value"))
    if to_remove:
        ecs.untag_resource(resourceArn=arn, tagKeys=to_remove)


@register
class ClusterKind(Kind[ClusterSpec]):
    kind = "Cluster"
    spec_model = ClusterSpec
    not_found_codes = frozenset({"ClusterNotFoundException"})
    rules = {
        "clusterName": FieldRule(FieldPolicy.IMMUTABLE, "a cluster is named at creation; a new name is a new cluster"),
    }

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        spec = self.spec(manifest)
        return check_name(manifest, spec.cluster_name, cluster_name(manifest), CLUSTER_NAME, "clusterName")

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        return []

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        strategy = [s.model_dump(by_alias=True) for s in spec.default_capacity_provider_strategy]
        return {
            "clusterName": cluster_name(manifest),
            "capacityProviders": sorted(spec.capacity_providers),
            "defaultCapacityProviderStrategy": _strategy(strategy),
            "containerInsights": spec.container_insights,
            "tags": desired_tags(manifest, ctx.stack, spec.tags),
        }

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        found = find_cluster_by_name(ctx.client("ecs"), cluster_name(manifest))
        return None if found is None else _live(manifest.key, found, ctx.stack)

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        created = ctx.client("ecs").create_cluster(
            clusterName=desired["clusterName"],
            capacityProviders=desired["capacityProviders"],
            defaultCapacityProviderStrategy=desired["defaultCapacityProviderStrategy"],
            settings=[{"name": "containerInsights", "value": desired["containerInsights"]}],
            tags=tags_to_list(desired["tags"], "key", "value"),
        )["cluster"]
        return _live(manifest.key, {**created, "tags": tags_to_list(desired["tags"], "key", "value")}, ctx.stack)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        ecs = ctx.client("ecs")
        if {"capacityProviders", "defaultCapacityProviderStrategy"} & set(changed):
            ecs.put_cluster_capacity_providers(
                cluster=live.physical_id,
                capacityProviders=desired["capacityProviders"],
                defaultCapacityProviderStrategy=desired["defaultCapacityProviderStrategy"],
            )
        if "containerInsights" in changed:
            # UpdateCluster, not UpdateClusterSettings: same effect on AWS, and moto implements only this one.
            ecs.update_cluster(
                cluster=live.physical_id,
                settings=[{"name": "containerInsights", "value": desired["containerInsights"]}],
            )
        if "tags" in changed:
            retag(ecs, live.physical_id, desired["tags"], live.tags)
        found = find_cluster_by_name(ecs, live.fields["clusterName"])
        if found is None:
            raise TemporaryError(str(manifest.key), "cluster not visible after the update", delay=2)
        return _live(manifest.key, found, ctx.stack)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        try:
            with self.absent_ok():
                ctx.client("ecs").delete_cluster(cluster=live.physical_id)
        except Exception as exc:
            if error_code(exc) in ("ClusterContainsServicesException", "ClusterContainsTasksException"):
                raise TemporaryError(
                    str(live.key), "services or tasks still run in it; delete them first", delay=15
                ) from exc
            raise

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        ecs = ctx.client("ecs")
        arns: list[str] = []
        for page in ecs.get_paginator("list_clusters").paginate():
            arns.extend(page.get("clusterArns", []))
        owned: list[LiveResource] = []
        for start in range(0, len(arns), 100):
            batch = ecs.describe_clusters(clusters=arns[start : start + 100], include=["TAGS", "SETTINGS"])
            for cluster in batch.get("clusters", []):
                live = _live(None, cluster, ctx.stack)
                if cluster.get("status") == "ACTIVE" and live.owned:
                    owned.append(live)
        return owned

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        return "the cluster and every service and task running in it"
