"""Kind ``CodeDeployApplication``: a CodeDeploy application (the gate's: compute platform Lambda), with its tags.

Registered with `controller.kinds.registry`; the reconciler calls the verbs. An application is a name, a compute
platform and tags; its deployment groups are kind ``CodeDeployDeploymentGroup`` (they reference it, so they are
created after it and deleted before it). The compute platform cannot change (CodeDeploy has no call for it): the
diff marks it immutable. UpdateApplication only renames, and an application is found by its name, so a rename
in the spec reads as another application (create, then prune the old one). Locally, moto's CodeDeploy lacks
UpdateApplication and DeleteApplication; `localplane.codedeploy_api` adds them to the emulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator

from controller import codedeploy
from controller.errors import TemporaryError
from controller.kinds.base import Context, FieldPolicy, FieldRule, Kind, LiveResource, check_name, spec_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import tags_to_list
from controller.ownership import desired_tags, is_owned, owned_key
from controller.specs.fields import SpecModel, aws_name

# CodeDeploy: application names are 1..100 characters (letters, digits, '.', '_', '-', '+' and '=' in practice).
APPLICATION_NAME = aws_name("applicationName", r"[A-Za-z0-9._+=-]+", 100, "letters, digits and '.', '_', '-', "
                            "'+', '='")


class CodeDeployApplicationSpec(SpecModel):
    application_name: Annotated[str, AfterValidator(APPLICATION_NAME)] | None = None  # defaults to metadata.name
    compute_platform: Literal["Lambda", "Server", "ECS"] = "Lambda"
    tags: dict[str, str] = {}


def application_name(manifest: Manifest) -> str:
    return spec_of(manifest, CodeDeployApplicationSpec).application_name or manifest.metadata.name


@register
class CodeDeployApplicationKind(Kind[CodeDeployApplicationSpec]):
    kind = "CodeDeployApplication"
    spec_model = CodeDeployApplicationSpec
    not_found_codes = frozenset({"ApplicationDoesNotExistException"})
    rules = {
        "applicationName": FieldRule(FieldPolicy.IMMUTABLE, "the application is found by its name"),
        "computePlatform": FieldRule(FieldPolicy.IMMUTABLE, "CodeDeploy cannot change an application's compute "
                                                            "platform"),
    }

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        given = self.spec(manifest).application_name
        return check_name(manifest, given, application_name(manifest), APPLICATION_NAME, "applicationName")

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        return []

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        return {
            "applicationName": application_name(manifest),
            "computePlatform": spec.compute_platform,
            "tags": desired_tags(manifest, ctx.stack, spec.tags),
        }

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        return self._live(application_name(manifest), ctx, manifest.key)

    def _live(self, name: str, ctx: Context, key: ResourceKey | None = None) -> LiveResource | None:
        found = self.read_or_none(ctx.client("codedeploy").get_application, applicationName=name)
        if found is None:
            return None
        app = found["application"]
        arn = codedeploy.application_arn(ctx, app["applicationName"])
        tags = codedeploy.read_tags(ctx, arn)
        fields = {"applicationName": app["applicationName"], "computePlatform": app.get("computePlatform", "Server"),
                  "tags": tags}
        resolved = key or owned_key(tags) or ResourceKey(kind=self.kind, name=app["applicationName"])
        outputs = {"name": app["applicationName"], "arn": arn}
        return LiveResource(resolved, app["applicationName"], fields, outputs, tags, is_owned(tags, ctx.stack))

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        ctx.client("codedeploy").create_application(applicationName=desired["applicationName"],
                                                    computePlatform=desired["computePlatform"],
                                                    tags=tags_to_list(desired["tags"]))
        return self._reread(manifest, ctx)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        if "tags" in changed:
            codedeploy.sync_tags(ctx, live.outputs["arn"], desired["tags"], live.tags)
        return self._reread(manifest, ctx)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        with self.absent_ok():
            ctx.client("codedeploy").delete_application(applicationName=live.physical_id)

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        owned: list[LiveResource] = []
        for page in ctx.client("codedeploy").get_paginator("list_applications").paginate():
            for name in page.get("applications", []):
                live = self._live(name, ctx)
                if live is not None and live.owned:
                    owned.append(live)
        return owned

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        groups = ctx.client("codedeploy").list_deployment_groups(applicationName=live.physical_id)
        names = groups.get("deploymentGroups", [])
        return (f"application {live.physical_id}, its {len(names)} deployment groups ({', '.join(names) or 'none'}) "
                "and their deployment history")

    def _reread(self, manifest: Manifest, ctx: Context) -> LiveResource:
        live = self.read(manifest, ctx)
        if live is None:
            raise TemporaryError(str(manifest.key), "application not visible yet after the write", delay=2)
        return live
