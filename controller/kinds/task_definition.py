"""Kind ``TaskDefinition``: an ECS task definition kept in the native RegisterTaskDefinition shape (ecspresso).

Registered with `controller.kinds.registry`; the reconciler calls the verbs. The spec *is* the
RegisterTaskDefinition input (camelCase, as in ``aws ecs register-task-definition --cli-input-yaml``) plus a
few reference fields the controller resolves, so that specs name resources instead of pasting ARNs:

- ``taskRoleRef`` / ``executionRoleRef`` → ``taskRoleArn`` / ``executionRoleArn`` (Role ``arn``);
- ``logConfiguration.logGroupRef`` → ``options.awslogs-group`` (LogGroup ``name``);
- ``environment[].valueFrom: {queueRef: ..., output: url}`` → ``value``;
- ``secrets[].valueFrom: {secretRef: ..., jsonKey: ...}`` → the secret ARN (``ARN:key::`` with a JSON key).

RegisterTaskDefinition always creates a revision, so the spec is compared with the latest ACTIVE revision of the
family first, after normalizing both sides like ecspresso does (environment, secrets and ports sorted; ``cpu``
and ``memory`` as strings, ``"1 vCPU"``/``"2 GB"`` converted; ``essential`` true, ``cpu`` 0, ``protocol`` tcp,
health-check intervals and the awsvpc ``hostPort`` filled; empty lists dropped). A no-op reconcile registers
nothing. Tags alone are changed on the live revision, without a new one.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from controller import image_digest
from controller.errors import TemporaryError
from controller.kinds.base import Context, FieldPolicy, FieldRule, Kind, LiveResource, spec_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import canonical, sort_by, tags_from_list, tags_to_list, user_tags
from controller.ownership import desired_tags, is_owned, owned_key, tag_changes
from controller.specs.fields import RefTo, SpecModel, ValueRef, in_range, resolve_value

HEALTH_CHECK_DEFAULTS = {"interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0}
# Fargate's allowed memory (MiB) for each task cpu value.
FARGATE_MEMORY: dict[int, range] = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}
_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(vcpu|gb|gib|mb|mib)?\s*$", re.IGNORECASE)


class EnvironmentVariable(SpecModel):
    name: str = Field(min_length=1)
    value: str | None = None
    value_from: ValueRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EnvironmentVariable:
        if (self.value is None) == (self.value_from is None):
            raise ValueError(f"environment {self.name}: set exactly one of value or valueFrom")
        return self


class SecretVariable(SpecModel):
    name: str = Field(min_length=1)
    value_from: str | ValueRef


class PortMapping(SpecModel):
    container_port: Annotated[int, AfterValidator(in_range(1, 65535))]
    host_port: Annotated[int, AfterValidator(in_range(0, 65535))] | None = None
    protocol: Literal["tcp", "udp"] = "tcp"
    name: str | None = None
    app_protocol: Literal["http", "http2", "grpc"] | None = None


class LogConfiguration(SpecModel):
    log_driver: Literal["awslogs", "awsfirelens", "splunk", "json-file", "fluentd"] = "awslogs"
    # fills options["awslogs-group"] from the LogGroup's name
    log_group_ref: Annotated[str, RefTo("LogGroup")] | None = None
    options: dict[str, str] = Field(default_factory=dict)


class HealthCheck(SpecModel):
    command: list[str] = Field(min_length=1)
    interval: Annotated[int, AfterValidator(in_range(5, 300))] = 30
    timeout: Annotated[int, AfterValidator(in_range(2, 60))] = 5
    retries: Annotated[int, AfterValidator(in_range(1, 10))] = 3
    start_period: Annotated[int, AfterValidator(in_range(0, 300))] = 0


class ContainerDefinition(SpecModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")
    image: str = Field(min_length=1)
    essential: bool = True
    cpu: Annotated[int, AfterValidator(in_range(0, 16384))] = 0
    memory: Annotated[int, AfterValidator(in_range(6, 122880))] | None = None
    memory_reservation: Annotated[int, AfterValidator(in_range(6, 122880))] | None = None
    command: list[str] = Field(default_factory=list)
    entry_point: list[str] = Field(default_factory=list)
    working_directory: str | None = None
    user: str | None = None
    environment: list[EnvironmentVariable] = Field(default_factory=list)
    secrets: list[SecretVariable] = Field(default_factory=list)
    port_mappings: list[PortMapping] = Field(default_factory=list)
    log_configuration: LogConfiguration | None = None
    health_check: HealthCheck | None = None
    stop_timeout: Annotated[int, AfterValidator(in_range(2, 120))] | None = None
    start_timeout: Annotated[int, AfterValidator(in_range(2, 600))] | None = None
    readonly_root_filesystem: bool | None = None
    linux_parameters: dict[str, Any] | None = None
    ulimits: list[dict[str, Any]] = Field(default_factory=list)
    docker_labels: dict[str, str] = Field(default_factory=dict)
    mount_points: list[dict[str, Any]] = Field(default_factory=list)
    depends_on: list[dict[str, str]] = Field(default_factory=list)


class RuntimePlatform(SpecModel):
    cpu_architecture: Literal["ARM64", "X86_64"] = "ARM64"
    operating_system_family: Literal["LINUX"] = "LINUX"


class TaskDefinitionSpec(SpecModel):
    family: str = Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")
    task_role_ref: Annotated[str, RefTo("Role")] | None = None
    task_role_arn: str | None = None
    execution_role_ref: Annotated[str, RefTo("Role")] | None = None
    execution_role_arn: str | None = None
    network_mode: Literal["awsvpc", "bridge", "host", "none"] = "awsvpc"
    requires_compatibilities: list[Literal["FARGATE", "EC2", "EXTERNAL"]] = Field(
        default_factory=lambda: ["FARGATE"]  # type: ignore[arg-type]
    )
    cpu: str | int | None = None
    memory: str | int | None = None
    runtime_platform: RuntimePlatform | None = None
    container_definitions: list[ContainerDefinition] = Field(min_length=1, max_length=10)
    volumes: list[dict[str, Any]] = Field(default_factory=list)
    ephemeral_storage: dict[str, int] | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _aws_rules(self) -> TaskDefinitionSpec:
        if self.task_role_ref and self.task_role_arn:
            raise ValueError("set taskRoleRef or taskRoleArn, not both")
        if self.execution_role_ref and self.execution_role_arn:
            raise ValueError("set executionRoleRef or executionRoleArn, not both")
        names = [c.name for c in self.container_definitions]
        if len(set(names)) != len(names):
            raise ValueError("containerDefinitions: container names must be unique")
        if "FARGATE" in self.requires_compatibilities:
            _check_fargate_size(self.cpu, self.memory, self.network_mode)
        return self


def cpu_units(value: str | int | None) -> str | None:
    """``1024``, ``"1024"`` or ``"1 vCPU"`` → ``"1024"`` (ECS stores task cpu as a string)."""
    return _units(value, {"vcpu": 1024}, "cpu")


def memory_mib(value: str | int | None) -> str | None:
    """``2048``, ``"2048"``, ``"2 GB"`` or ``"2048 MiB"`` → ``"2048"``."""
    return _units(value, {"gb": 1024, "gib": 1024, "mb": 1, "mib": 1}, "memory")


def _units(value: str | int | None, scale: dict[str, int], what: str) -> str | None:
    if value is None:
        return None
    match = _UNIT.match(str(value))
    unit = (match.group(2) or "").lower() if match else ""
    if match is None or (unit and unit not in scale):
        raise ValueError(f"{what}: cannot read {value!r} (write e.g. 1024, '1 vCPU' or '2 GB')")
    return str(int(float(match.group(1)) * scale.get(unit, 1)))


def _check_fargate_size(cpu: str | int | None, memory: str | int | None, network_mode: str) -> None:
    if network_mode != "awsvpc":
        raise ValueError("Fargate tasks need networkMode: awsvpc")
    task_cpu, task_memory = cpu_units(cpu), memory_mib(memory)
    if task_cpu is None or task_memory is None:
        raise ValueError("Fargate tasks need task-level cpu and memory")
    allowed = FARGATE_MEMORY.get(int(task_cpu))
    if allowed is None:
        raise ValueError(f"cpu: Fargate allows {', '.join(map(str, FARGATE_MEMORY))} (got {task_cpu})")
    if int(task_memory) not in allowed:
        raise ValueError(
            f"memory: with cpu {task_cpu} Fargate allows {allowed.start}..{allowed.stop - 1} MiB in steps of"
            f" {allowed.step} (got {task_memory})"
        )


def drop_empty(value: Any) -> Any:
    """Recursively drop None, empty lists and empty dicts: ECS returns ``[]`` where a spec says nothing."""
    if isinstance(value, dict):
        cleaned = {k: drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [drop_empty(v) for v in value]
    return value


def normalize_container(container: dict[str, Any], network_mode: str) -> dict[str, Any]:
    """One container definition (API shape) with ECS defaults filled and order-free lists sorted."""
    out = dict(canonical(container))
    out.setdefault("essential", True)
    out.setdefault("cpu", 0)
    out["environment"] = sort_by(out.get("environment") or [], "name")
    out["secrets"] = sort_by(out.get("secrets") or [], "name")
    ports = []
    for port in out.get("portMappings") or []:
        filled = {"protocol": "tcp", **port}
        if network_mode == "awsvpc":
            filled.setdefault("hostPort", filled["containerPort"])
        ports.append(filled)
    out["portMappings"] = sorted(ports, key=lambda p: (p["containerPort"], p["protocol"]))
    if out.get("healthCheck"):
        out["healthCheck"] = {**HEALTH_CHECK_DEFAULTS, **out["healthCheck"]}
    return dict(drop_empty(out))


def normalize_task_definition(api: dict[str, Any]) -> dict[str, Any]:
    """A RegisterTaskDefinition input or a DescribeTaskDefinition result → the compared fields."""
    network_mode = api.get("networkMode") or "bridge"
    containers = [normalize_container(c, network_mode) for c in api.get("containerDefinitions") or []]
    return {
        "family": api["family"],
        "taskRoleArn": api.get("taskRoleArn"),
        "executionRoleArn": api.get("executionRoleArn"),
        "networkMode": network_mode,
        "requiresCompatibilities": sorted(api.get("requiresCompatibilities") or []),
        "cpu": cpu_units(api.get("cpu")),
        "memory": memory_mib(api.get("memory")),
        "runtimePlatform": api.get("runtimePlatform"),
        "containerDefinitions": sorted(containers, key=lambda c: str(c["name"])),
        "volumes": drop_empty(canonical(api.get("volumes") or [])),
        "ephemeralStorage": api.get("ephemeralStorage"),
    }


def _container_api(container: ContainerDefinition, ctx: Context, manifest: Manifest, index: int) -> dict[str, Any]:
    """The spec's container with references resolved and its image pinned by digest, in RegisterTaskDefinition
    shape."""
    out = container.model_dump(by_alias=True, exclude_none=True)
    out["image"] = ctx.prefetched.memo("image-digest", container.image, lambda: image_digest.resolve(
        container.image, lambda _region: ctx.client("ecr"), manifest, f"spec.containerDefinitions[{index}].image"))
    out["environment"] = [{"name": e.name, "value": _env_value(e, ctx)} for e in container.environment]
    out["secrets"] = [{"name": s.name, "valueFrom": resolve_value(s.value_from, ctx)} for s in container.secrets]
    log = container.log_configuration
    if log is not None:
        options = dict(log.options)
        if log.log_group_ref:
            options["awslogs-group"] = ctx.output(ResourceKey(kind="LogGroup", name=log.log_group_ref), "name")
        out["logConfiguration"] = {"logDriver": log.log_driver, "options": options}
    return dict(drop_empty(out))


def _env_value(variable: EnvironmentVariable, ctx: Context) -> str:
    if variable.value_from is not None:
        return variable.value_from.resolve(ctx)
    return variable.value or ""


def register_args(manifest: Manifest, ctx: Context) -> dict[str, Any]:
    """The RegisterTaskDefinition arguments for a manifest, references resolved."""
    spec = spec_of(manifest, TaskDefinitionSpec)
    args: dict[str, Any] = {
        "family": spec.family,
        "networkMode": spec.network_mode,
        "requiresCompatibilities": list(spec.requires_compatibilities),
        "cpu": cpu_units(spec.cpu),
        "memory": memory_mib(spec.memory),
        "taskRoleArn": _role(spec.task_role_ref, spec.task_role_arn, ctx),
        "executionRoleArn": _role(spec.execution_role_ref, spec.execution_role_arn, ctx),
        "runtimePlatform": spec.runtime_platform.model_dump(by_alias=True) if spec.runtime_platform else None,
        "containerDefinitions": [_container_api(c, ctx, manifest, i) for i, c in enumerate(spec.container_definitions)],
        "volumes": spec.volumes,
        "ephemeralStorage": spec.ephemeral_storage,
    }
    return {k: v for k, v in args.items() if v is not None}


def _role(ref: str | None, arn: str | None, ctx: Context) -> str | None:
    return ctx.output(ResourceKey(kind="Role", name=ref), "arn") if ref else arn


def _revision(arn: str) -> int:
    return int(arn.rsplit(":", 1)[-1])


def find_latest_active(ecs: Any, family: str) -> str | None:
    """ARN of the family's latest ACTIVE revision. Listed, not described by family: moto's DescribeTaskDefinition
    by family returns the highest revision even when it is INACTIVE, and ``familyPrefix`` is only a prefix."""
    arns: list[str] = []
    pages = ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status="ACTIVE")
    for page in pages:
        arns.extend(a for a in page.get("taskDefinitionArns", []) if a.rsplit("/", 1)[-1].split(":")[0] == family)
    return max(arns, key=_revision) if arns else None


@register
class TaskDefinitionKind(Kind[TaskDefinitionSpec]):
    kind = "TaskDefinition"
    spec_model = TaskDefinitionSpec
    # DescribeTaskDefinition answers an unknown revision with a generic ClientException.
    not_found_codes = frozenset({"ClientException"})
    rules = {
        "family": FieldRule(
            FieldPolicy.IMMUTABLE,
            "the family is the task definition's identity; a new family is a new resource and services must be"
            " pointed at it",
        ),
    }

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        spec = self.spec(manifest)
        refs = [ResourceKey(kind="Role", name=r) for r in (spec.task_role_ref, spec.execution_role_ref) if r]
        for container in spec.container_definitions:
            values = [e.value_from for e in container.environment] + [s.value_from for s in container.secrets]
            refs.extend(v.key() for v in values if isinstance(v, ValueRef))
            log = container.log_configuration
            if log is not None and log.log_group_ref:
                refs.append(ResourceKey(kind="LogGroup", name=log.log_group_ref))
        return list(dict.fromkeys(refs))

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        fields = normalize_task_definition(register_args(manifest, ctx))
        return {**fields, "tags": desired_tags(manifest, ctx.stack, spec.tags)}

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        spec = self.spec(manifest)
        ecs = ctx.client("ecs")
        arn = find_latest_active(ecs, spec.family)
        if arn is not None:
            live = self._describe(ecs, arn, manifest.key, ctx)
            if not live.owned and self._family_owned(ecs, spec.family, ctx):
                # A revision registered behind our back: the family is still ours, the revision is drift.
                live = replace(live, owned=True)
            return live
        # The family in the spec may have been renamed: the old one, tagged for this key, shows as replacement.
        return next((live for live in self.list_owned(ctx) if live.key == manifest.key), None)

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        return self._register(manifest, desired, ctx)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        ecs = ctx.client("ecs")
        if set(changed) - {"tags"}:
            return self._register(manifest, desired, ctx)
        to_set, to_remove = tag_changes(desired["tags"], live.tags)
        if to_set:
            ecs.tag_resource(resourceArn=live.physical_id, tags=tags_to_list(to_set, "key", "value"))
        if to_remove:
            ecs.untag_resource(resourceArn=live.physical_id, tagKeys=to_remove)
        return self._describe(ecs, live.physical_id, manifest.key, ctx)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        """Deregister every ACTIVE revision of the family (ECS keeps them INACTIVE; running tasks go on)."""
        ecs = ctx.client("ecs")
        family = live.fields["family"]
        while (arn := find_latest_active(ecs, family)) is not None:
            ecs.deregister_task_definition(taskDefinition=arn)

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        ecs = ctx.client("ecs")
        owned: list[LiveResource] = []
        for page in ecs.get_paginator("list_task_definition_families").paginate(status="ACTIVE"):
            for family in page.get("families", []):
                arn = find_latest_active(ecs, family)
                if arn is None:
                    continue
                live = self._describe(ecs, arn, None, ctx)
                if live.owned:
                    owned.append(live)
        return owned

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        return (
            f"family {live.fields['family']}: services still point at revision"
            f" {live.outputs.get('revision')} until they are updated to the new family"
        )

    def _family_owned(self, ecs: Any, family: str, ctx: Context) -> bool:
        """True if any ACTIVE revision of the family carries this stack's ownership tags."""
        for page in ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status="ACTIVE"):
            for arn in page.get("taskDefinitionArns", []):
                if arn.rsplit("/", 1)[-1].split(":")[0] != family:
                    continue
                tags = tags_from_list(ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"]).get("tags"))
                if is_owned(tags, ctx.stack):
                    return True
        return False

    def _register(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        args = register_args(manifest, ctx)
        ecs = ctx.client("ecs")
        created = ecs.register_task_definition(**args, tags=tags_to_list(desired["tags"], "key", "value"))
        return self._describe(ecs, created["taskDefinition"]["taskDefinitionArn"], manifest.key, ctx)

    def _describe(self, ecs: Any, arn: str, key: ResourceKey | None, ctx: Context) -> LiveResource:
        try:
            found = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
        except Exception as exc:
            if self.is_not_found(exc):
                raise TemporaryError(str(key or arn), f"{arn} is not visible yet", delay=2) from exc
            raise
        definition = found["taskDefinition"]
        tags = user_tags(tags_from_list(found.get("tags")))
        family = definition["family"]
        return LiveResource(
            key=key or owned_key(tags) or ResourceKey(kind="TaskDefinition", name=family),
            physical_id=definition["taskDefinitionArn"],
            fields={**normalize_task_definition(definition), "tags": tags},
            outputs={
                "arn": definition["taskDefinitionArn"],
                "family": family,
                "revision": str(definition["revision"]),
                "name": family,
            },
            tags=tags,
            owned=is_owned(tags, ctx.stack),
        )
