"""Kind ``Function``: a Python Lambda built from package directories by `controller.packaging` (the gate).

Registered with `controller.kinds.registry`; the reconciler calls the verbs. The spec names the code by path
(``code: {packages: [gate, common], requirements: gate/requirements.txt}``, relative to the repo root), never by
import: the controller ships the gate as any operator ships any workload. The zip is deterministic, so its
``CodeSha256`` equals Lambda's exactly when the code is the same: UpdateFunctionCode is called only when the
two differ. Environment values may come from other resources (``valueFrom: {queueRef: ..., output: url}``).

Every write is followed by a wait while Lambda reports ``LastUpdateStatus: InProgress`` (the next write would
fail with ResourceConflictException), bounded by `controller.retrying.wait_for`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from controller import packaging
from controller.errors import PermanentError, TemporaryError
from controller.kinds.base import Context, FieldPolicy, FieldRule, Kind, LiveResource, check_name, spec_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import user_tags
from controller.ownership import desired_tags, is_owned, owned_key, tag_changes
from controller.retrying import wait_for
from controller.specs.fields import ARN, RefTo, SpecModel, ValueRef, aws_name, in_range, simple_name

UPDATE_TIMEOUT_S = 300.0
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


def code_paths(code: Code, root: Path = packaging.REPO_ROOT) -> tuple[list[Path], Path | None]:
    """The spec's package and requirements paths, relative to the repo root unless absolute."""
    requirements = root / code.requirements if code.requirements else None
    return [root / p for p in code.packages], requirements


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
        }

    def build(self, manifest: Manifest) -> packaging.LambdaZip:
        """Build the zip (deterministic; wheels cached) and remember it for create/update."""
        spec = self.spec(manifest)
        packages, requirements = code_paths(spec.code)
        built = packaging.build_lambda_zip(
            packages=packages,
            requirements=requirements,
            architecture=spec.architecture,
            python_version=spec.runtime.removeprefix("python"),
        )
        with self._lock:
            self._zips[manifest.key] = built
        return built

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        found = self.read_or_none(ctx.client("lambda").get_function, FunctionName=function_name(manifest))
        return None if found is None else self._live(found, manifest.key, ctx)

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
                    owned.append(self._live(found, None, ctx))
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

    def _live(self, found: dict[str, Any], key: ResourceKey | None, ctx: Context) -> LiveResource:
        config = found["Configuration"]
        tags = user_tags(found.get("Tags") or {})
        concurrency = (found.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        name = config["FunctionName"]
        return LiveResource(
            key=key or owned_key(tags) or ResourceKey(kind="Function", name=name),
            physical_id=config["FunctionArn"],
            fields={
                "functionName": name,
                **_config_fields(config),
                "reservedConcurrency": concurrency,
                "tags": tags,
            },
            outputs={"arn": config["FunctionArn"], "name": name},
            tags=tags,
            owned=is_owned(tags, ctx.stack),
        )

    def _reread(self, manifest: Manifest, ctx: Context) -> LiveResource:
        live = self.read(manifest, ctx)
        if live is None:
            raise TemporaryError(str(manifest.key), "function not visible yet after the write", delay=2)
        return live
