"""Kind ``Function``: a Python Lambda built from package directories by `controller.packaging` (the gate).

Registered with `controller.kinds.registry`; the reconciler calls the verbs. The spec names the code by path
(``code: {packages: [gate, common], requirements: gate/requirements.txt}``, relative to the repo root), never by
import: the controller ships the gate as any operator ships any workload. The zip is deterministic, so its
``CodeSha256`` equals Lambda's exactly when the code is the same: UpdateFunctionCode is called only when the
two differ. Environment values may come from other resources (``valueFrom: {queueRef: ..., output: url}``).

Every write is followed by a wait while Lambda reports ``LastUpdateStatus: InProgress`` (the next write would
fail with ResourceConflictException), bounded by `controller.retrying.wait_for`.

Releases: the function is invoked through its ``live`` alias (output ``aliasArn``; the EventSourceMapping kind
points there, never at ``$LATEST``). The field ``release`` reads ``current`` when the version the alias serves
(the new one, during a shift) has ``$LATEST``'s code and configuration; any change of code or configuration
therefore publishes one version (PublishVersion) and moves the alias by the spec's ``deployment.strategy``
(`controller.traffic_shift`): AllAtOnce at once; a canary or linear strategy sets the alias' RoutingConfig weight
of the new version to the first step and records the shift on the alias, for a follower to complete (CodeDeploy
on AWS). With ``deployment.deploymentGroupRef`` (kind CodeDeployDeploymentGroup), a release is a CodeDeploy
deployment of that group instead (AppSpec: the function, the alias, CurrentVersion and TargetVersion; the
strategy as its deployment configuration): CodeDeploy shifts the alias and watches the group's alarms, the
record names the deployment and its state is read from CodeDeploy (`controller.traffic_shift.resolve`).
A change of tags or reserved concurrency alone publishes nothing, and neither does an unchanged apply.
The alias is part of this kind, not a kind of its own: it has no spec beyond ``deployment`` and lives and dies
with its function.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from controller import packaging, traffic_shift
from controller.errors import PermanentError, TemporaryError
from controller.kinds.base import Context, FieldPolicy, FieldRule, Hold, Kind, LiveResource, check_name, spec_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import user_tags
from controller.ownership import desired_tags, is_owned, owned_key, tag_changes
from controller.retrying import error_code, wait_for
from controller.specs.fields import ARN, RefTo, SpecModel, ValueRef, aws_name, in_range, simple_name

UPDATE_TIMEOUT_S = 300.0
RELEASE_CURRENT = "current"
_GROUP_KIND = "CodeDeployDeploymentGroup"
CODEDEPLOY_CONFIG_PREFIX = "CodeDeployDefault.Lambda"
_CONFIG_FIELDS = ("runtime", "handler", "memorySize", "timeout", "role", "environment", "description")


# Lambda: names 1..64 characters; variable names start with a letter; all variables together at most 4 KB.
FUNCTION_NAME = simple_name("function name", 64)
ENV_NAME = aws_name("environment variable name", r"[A-Za-z][A-Za-z0-9_]*", 256, "letters, digits and '_', "
                    "starting with a letter")
ENV_MAX_BYTES = 4096

class Code(SpecModel):
    packages: list[str] = Field(min_length=1)
    requirements: str | None = None


class EnvValue(SpecModel):
    value_from: ValueRef


def _strategy(name: str) -> str:
    traffic_shift.parse(name)
    return name


class Deployment(SpecModel):
    """How a new version takes the alias' traffic: one of CodeDeploy's predefined Lambda configurations, shifted
    by a CodeDeploy deployment of ``deploymentGroupRef`` when named, else by the alias record's follower."""

    strategy: Annotated[str, AfterValidator(_strategy)] = "AllAtOnce"
    alarms: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(default_factory=list)
    deployment_group_ref: Annotated[str, RefTo("CodeDeployDeploymentGroup")] | None = None

    @model_validator(mode="after")
    def _fits_the_record(self) -> Deployment:
        if self.deployment_group_ref is not None and self.alarms:
            raise ValueError("alarms: with deploymentGroupRef, CodeDeploy watches the deployment group's "
                             "alarmConfiguration; list the alarms there")
        if len(set(self.alarms)) != len(self.alarms):
            raise ValueError("alarms: each alarm once")
        if not traffic_shift.alarms_fit(self.alarms):
            raise ValueError(f"alarms: the shift record on the alias (its Description, {traffic_shift.DESCRIPTION_MAX}"
                             " characters) cannot hold these names; list fewer alarms, or one composite alarm")
        return self


class FunctionSpec(SpecModel):
    function_name: Annotated[str, AfterValidator(FUNCTION_NAME)] | None = None  # defaults to metadata.name
    code: Code
    handler: str = Field("gate.handler.handler", pattern=r"^[A-Za-z0-9_.]+$", max_length=128)
    runtime: Literal["python3.11", "python3.12", "python3.13"] = "python3.12"
    architecture: Literal["arm64", "x86_64"] = "arm64"
    memory_size: Annotated[int, AfterValidator(in_range(128, 10240))] = 256
    timeout: Annotated[int, AfterValidator(in_range(1, 900))] = 30
    description: str = Field("", max_length=256)
    role_ref: Annotated[str, RefTo("Role")] | None = None
    role_arn: ARN | None = None
    environment: dict[Annotated[str, AfterValidator(ENV_NAME)], str | EnvValue] = Field(default_factory=dict)
    reserved_concurrency: Annotated[int, AfterValidator(in_range(0, 1000))] | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    deployment: Deployment = Field(default_factory=Deployment)

    @model_validator(mode="after")
    def _one_role(self) -> FunctionSpec:
        if (self.role_ref is None) == (self.role_arn is None):
            raise ValueError("set exactly one of roleRef or roleArn")
        reserved = {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
        if reserved & set(self.environment):
            raise ValueError(f"environment: Lambda reserves {', '.join(sorted(reserved & set(self.environment)))}")
        size = sum(len(k) + len(v) for k, v in self.environment.items() if isinstance(v, str))
        if size > ENV_MAX_BYTES:
            raise ValueError(f"environment: Lambda allows {ENV_MAX_BYTES} bytes of variables in all (got {size})")
        return self


def function_name(manifest: Manifest) -> str:
    spec = spec_of(manifest, FunctionSpec)
    return spec.function_name or manifest.metadata.name


def _config_fields(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "runtime": config.get("Runtime"),
        "handler": config.get("Handler"),
        "architecture": (config.get("Architectures") or ["x86_64"])[0],
        "memorySize": config.get("MemorySize", 128),
        "timeout": config.get("Timeout", 3),
        "role": config.get("Role"),
        "environment": dict(sorted(((config.get("Environment") or {}).get("Variables") or {}).items())),
        "description": config.get("Description") or "",
        "codeSha256": config.get("CodeSha256"),
    }


@register
class FunctionKind(Kind[FunctionSpec]):
    kind = "Function"
    value_output = "arn"  # what `valueFrom: {functionRef: NAME}` takes by default
    spec_model = FunctionSpec
    not_found_codes = frozenset({"ResourceNotFoundException"})
    rules = {
        "functionName": FieldRule(FieldPolicy.IMMUTABLE, "Lambda cannot rename a function"),
    }

    def __init__(self) -> None:
        self._zips: dict[ResourceKey, packaging.LambdaZip] = {}
        self._lock = threading.Lock()

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        spec = self.spec(manifest)
        return check_name(manifest, spec.function_name, function_name(manifest), FUNCTION_NAME, "functionName")

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        spec = self.spec(manifest)
        refs = [ResourceKey(kind="Role", name=spec.role_ref)] if spec.role_ref else []
        refs.extend(v.value_from.key() for v in spec.environment.values() if isinstance(v, EnvValue))
        if spec.deployment.deployment_group_ref:
            refs.append(ResourceKey(kind=_GROUP_KIND, name=spec.deployment.deployment_group_ref))
        return list(dict.fromkeys(refs))

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        built = self.build(manifest)
        role = ctx.output(ResourceKey(kind="Role", name=spec.role_ref)) if spec.role_ref else spec.role_arn
        environment = {
            name: value if isinstance(value, str) else value.value_from.resolve(ctx)
            for name, value in sorted(spec.environment.items())
        }
        return {
            "functionName": function_name(manifest),
            "runtime": spec.runtime,
            "handler": spec.handler,
            "architecture": spec.architecture,
            "memorySize": spec.memory_size,
            "timeout": spec.timeout,
            "role": role,
            "environment": environment,
            "description": spec.description,
            "codeSha256": built.sha256_b64,
            "reservedConcurrency": spec.reserved_concurrency,
            "tags": desired_tags(manifest, ctx.stack, spec.tags),
            "release": RELEASE_CURRENT,
        }

    def build(self, manifest: Manifest) -> packaging.LambdaZip:
        """Build the zip (deterministic; wheels cached) and remember it for create/update."""
        spec = self.spec(manifest)
        built = packaging.function_zip(packages=spec.code.packages, requirements=spec.code.requirements,
                                       architecture=spec.architecture, runtime=spec.runtime)
        with self._lock:
            self._zips[manifest.key] = built
        return built

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        lam = ctx.client("lambda")
        found = self.read_or_none(lam.get_function, FunctionName=function_name(manifest))
        return None if found is None else self._live(found, manifest.key, ctx, lam)

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        lam = ctx.client("lambda")
        lam.create_function(
            FunctionName=desired["functionName"],
            Code={"ZipFile": self._zip_bytes(manifest, desired)},
            Architectures=[desired["architecture"]],
            Publish=False,
            Tags=desired["tags"],
            **self._config_args(desired),
        )
        self._wait_ready(lam, manifest)
        self._release(lam, manifest, desired["functionName"], ctx)
        if desired["reservedConcurrency"] is not None:
            lam.put_function_concurrency(
                FunctionName=desired["functionName"], ReservedConcurrentExecutions=desired["reservedConcurrency"]
            )
        return self._reread(manifest, ctx)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        lam = ctx.client("lambda")
        name = desired["functionName"]
        if {"codeSha256", "architecture"} & set(changed):
            zip_file = self._zip_bytes(manifest, desired)
            lam.update_function_code(FunctionName=name, ZipFile=zip_file, Architectures=[desired["architecture"]])
            self._wait_ready(lam, manifest)
        if set(_CONFIG_FIELDS) & set(changed):
            lam.update_function_configuration(FunctionName=name, **self._config_args(desired))
            self._wait_ready(lam, manifest)
        if {"codeSha256", "architecture", "release", *_CONFIG_FIELDS} & set(changed):
            self._release(lam, manifest, name, ctx)
        if "reservedConcurrency" in changed:
            if desired["reservedConcurrency"] is None:
                lam.delete_function_concurrency(FunctionName=name)
            else:
                lam.put_function_concurrency(
                    FunctionName=name, ReservedConcurrentExecutions=desired["reservedConcurrency"]
                )
        if "tags" in changed:
            to_set, to_remove = tag_changes(desired["tags"], live.tags)
            if to_set:
                lam.tag_resource(Resource=live.physical_id, Tags=to_set)
            if to_remove:
                lam.untag_resource(Resource=live.physical_id, TagKeys=to_remove)
        return self._reread(manifest, ctx)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        with self.absent_ok():
            ctx.client("lambda").delete_function(FunctionName=live.physical_id)

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        lam = ctx.client("lambda")
        owned: list[LiveResource] = []
        for page in lam.get_paginator("list_functions").paginate():
            for config in page.get("Functions", []):
                tags = user_tags(lam.list_tags(Resource=config["FunctionArn"]).get("Tags") or {})
                if is_owned(tags, ctx.stack):
                    found = lam.get_function(FunctionName=config["FunctionArn"])
                    owned.append(self._live(found, None, ctx, lam))
        return owned

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        return (
            f"function {live.fields['functionName']}: its event source mappings and reserved concurrency; "
            "messages stay in the source queue while it is recreated"
        )

    def _config_args(self, desired: dict[str, Any]) -> dict[str, Any]:
        return {
            "Runtime": desired["runtime"],
            "Handler": desired["handler"],
            "Role": desired["role"],
            "MemorySize": desired["memorySize"],
            "Timeout": desired["timeout"],
            "Description": desired["description"],
            "Environment": {"Variables": desired["environment"]},
        }

    def _zip_bytes(self, manifest: Manifest, desired: dict[str, Any]) -> bytes:
        with self._lock:
            built = self._zips.get(manifest.key)
        if built is None or built.sha256_b64 != desired["codeSha256"]:
            built = self.build(manifest)
        if built.sha256_b64 != desired["codeSha256"]:
            raise TemporaryError(str(manifest.key), "the code changed while reconciling; diffing again", delay=1)
        if built.size > 50 * 1024 * 1024:
            raise PermanentError(str(manifest.key), f"zip is {built.size} bytes; Lambda takes at most 50 MB inline")
        return built.path.read_bytes()

    def _wait_ready(self, lam: Any, manifest: Manifest) -> None:
        """Until the function is Active and no update is InProgress (bounded); a Failed update is an error."""

        def settled() -> dict[str, Any] | None:
            config: dict[str, Any] = lam.get_function_configuration(FunctionName=function_name(manifest))
            if config.get("State") == "Pending" or config.get("LastUpdateStatus") == "InProgress":
                return None
            return config

        config = wait_for(settled, resource=str(manifest.key), what="LastUpdateStatus", timeout_s=UPDATE_TIMEOUT_S)
        if config.get("State") == "Failed" or config.get("LastUpdateStatus") == "Failed":
            reason = config.get("LastUpdateStatusReason") or config.get("StateReason") or "no reason given"
            raise PermanentError(str(manifest.key), f"Lambda reports the update failed: {reason}")

    def _release(self, lam: Any, manifest: Manifest, name: str, ctx: Context) -> None:
        """Publish $LATEST as a version and move the ``live`` alias to it by the spec's strategy."""
        spec = self.spec(manifest)
        strategy = traffic_shift.parse(spec.deployment.strategy)
        alias = self.read_or_none(lam.get_alias, FunctionName=name, Name=traffic_shift.ALIAS)
        old = None if alias is None else str(alias["FunctionVersion"])
        # No Description: a version's would replace the function's own, and the version is compared with $LATEST.
        new = str(lam.publish_version(FunctionName=name)["Version"])
        record = traffic_shift.ShiftRecord(new=new, old=old, strategy=strategy.name, started=traffic_shift.now_iso(),
                                           alarms=list(spec.deployment.alarms))
        if alias is None:
            done = record.finished(traffic_shift.COMPLETED, "first version: nothing to shift from")
            lam.create_alias(FunctionName=name, Name=traffic_shift.ALIAS, FunctionVersion=new,
                             Description=done.encode())
            return
        if traffic_shift.weights(alias) == {new: 1.0}:
            return  # the alias serves this version alone already (AWS returned the version it had published)
        group = spec.deployment.deployment_group_ref
        if group is not None and old != new:
            self._release_by_codedeploy(lam, ctx, alias, record, ResourceKey(kind=_GROUP_KIND, name=group))
            return
        if strategy.kind == "all-at-once" or old == new:
            done = record.finished(traffic_shift.COMPLETED, f"{strategy.name}: all traffic moved at once")
            lam.update_alias(FunctionName=name, Name=traffic_shift.ALIAS, FunctionVersion=new,
                             RoutingConfig={"AdditionalVersionWeights": {}}, Description=done.encode())
            return
        first_weight = strategy.steps()[0][1]
        lam.update_alias(FunctionName=name, Name=traffic_shift.ALIAS, FunctionVersion=old,
                         RoutingConfig={"AdditionalVersionWeights": {new: first_weight}}, Description=record.encode())

    def _release_by_codedeploy(self, lam: Any, ctx: Context, alias: dict[str, Any],
                               record: traffic_shift.ShiftRecord, group: ResourceKey) -> None:
        """Create a CodeDeploy deployment of ``group`` shifting the alias from ``record.old`` to ``record.new``
        by the spec's strategy; the alias record names it. A deployment still shifting is stopped first (this
        release supersedes it) and the alias returned to its primary version, where CodeDeploy starts from."""
        codedeploy = ctx.client("codedeploy")
        name, old = traffic_shift.ALIAS, str(record.old)
        function = str(alias["AliasArn"]).split(":")[6]  # arn:aws:lambda:REGION:ACCOUNT:function:NAME:ALIAS
        previous = traffic_shift.resolve(traffic_shift.decode(alias.get("Description")), codedeploy)
        if previous is not None and previous.deployment and previous.state == traffic_shift.SHIFTING:
            if previous.new == record.new:
                return  # this version's deployment is already under way
            try:
                codedeploy.stop_deployment(deploymentId=previous.deployment, autoRollbackEnabled=False)
            except Exception as exc:
                if error_code(exc) != "DeploymentAlreadyCompletedException":
                    raise
        if traffic_shift.weights(alias) != {old: 1.0}:
            lam.update_alias(FunctionName=function, Name=name, FunctionVersion=old,
                             RoutingConfig={"AdditionalVersionWeights": {}})
        appspec = {"version": 0.0, "Resources": [{function: {"Type": "AWS::Lambda::Function", "Properties": {
            "Name": function, "Alias": name, "CurrentVersion": old, "TargetVersion": record.new}}}]}
        deployment = codedeploy.create_deployment(
            applicationName=ctx.output(group, "applicationName"), deploymentGroupName=ctx.output(group, "name"),
            deploymentConfigName=CODEDEPLOY_CONFIG_PREFIX + record.strategy,
            description=f"{function}: version {old} -> {record.new}",
            revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(appspec)}},
        )["deploymentId"]
        lam.update_alias(FunctionName=function, Name=name,
                         Description=replace(record, deployment=str(deployment)).encode())

    def _release_state(self, lam: Any, config: dict[str, Any], alias: dict[str, Any] | None,
                       record: traffic_shift.ShiftRecord | None) -> str:
        """``current`` when the version the alias serves (the new one during a shift, or the target of the
        CodeDeploy deployment under way) is $LATEST's code and configuration; else what it serves."""
        if alias is None:
            return f"no {traffic_shift.ALIAS!r} alias"
        extra = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        serving = str(next(iter(extra), alias["FunctionVersion"]))
        if record is not None and record.deployment and record.state == traffic_shift.SHIFTING:
            serving = record.new
        version = lam.get_function_configuration(FunctionName=config["FunctionName"], Qualifier=serving)
        if _config_fields(version) == _config_fields(config):
            return RELEASE_CURRENT
        return f"version {serving} (not the code and configuration of $LATEST)"

    def _live(self, found: dict[str, Any], key: ResourceKey | None, ctx: Context, lam: Any) -> LiveResource:
        config = found["Configuration"]
        tags = user_tags(found.get("Tags") or {})
        concurrency = (found.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        name = config["FunctionName"]
        alias = self.read_or_none(lam.get_alias, FunctionName=name, Name=traffic_shift.ALIAS)
        record = None if alias is None else traffic_shift.decode(alias.get("Description"))
        if record is not None and record.deployment:
            record = traffic_shift.resolve(record, ctx.client("codedeploy"))
        return LiveResource(
            key=key or owned_key(tags) or ResourceKey(kind="Function", name=name),
            physical_id=config["FunctionArn"],
            fields={
                "functionName": name,
                **_config_fields(config),
                "reservedConcurrency": concurrency,
                "tags": tags,
                "release": self._release_state(lam, config, alias, record),
            },
            outputs={"arn": config["FunctionArn"], "name": name,
                     "aliasArn": f"{config['FunctionArn']}:{traffic_shift.ALIAS}"},
            tags=tags,
            owned=is_owned(tags, ctx.stack),
            hold=self._hold(lam, name, alias, record),
        )

    def _hold(self, lam: Any, name: str, alias: dict[str, Any] | None,
              record: traffic_shift.ShiftRecord | None) -> Hold | None:
        """The alias' record says the release of version N was rolled back (a shift's alarm, a stopped or failed
        CodeDeploy deployment, or `rollout undo`): hold ``release`` while the spec's code and configuration are
        still version N's."""
        if record is None or record.state != traffic_shift.ROLLED_BACK or alias is None:
            return None
        rolled_back = self.read_or_none(lam.get_function_configuration, FunctionName=name, Qualifier=record.new)
        if rolled_back is None or str(alias["FunctionVersion"]) == record.new:
            return None
        fields = {k: v for k, v in _config_fields(rolled_back).items() if k != "description"}
        return Hold(fields=("release",), while_desired=fields, rolled_back=f"version {record.new}",
                    reason=f"{record.reason or 'rolled back'}; live serves version {alias['FunctionVersion']}",
                    next_step=f"next: fix the Function spec (code or configuration) and apply, or see "
                              f"`huntazectl rollout status function {name}`")

    def _reread(self, manifest: Manifest, ctx: Context) -> LiveResource:
        live = self.read(manifest, ctx)
        if live is None:
            raise TemporaryError(str(manifest.key), "function not visible yet after the write", delay=2)
        return live
