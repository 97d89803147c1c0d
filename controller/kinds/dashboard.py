"""Kind ``Dashboard``: a CloudWatch dashboard whose body is written as YAML and compared as parsed JSON.

Registered with `controller.kinds.registry`; the reconciler calls the verbs. The body (``widgets`` plus the
optional ``start``/``end``/``periodOverride``) is validated lightly here (the grid is 24 columns wide) and
fully by CloudWatch. GetDashboard returns the body as JSON text: it is parsed and canonicalized
(`controller.normalize.json_text`) so key order and whitespace never show as drift.

Ownership: CloudWatch tags dashboards through TagResource (``arn:aws:cloudwatch::ACCOUNT:dashboard/NAME``;
PutDashboard itself takes no tags), but moto cannot tag dashboards (ResourceNotFoundException). So every body
also ends with a one-line footer widget naming the stack and the manifest ("Managed by huntazectl ..."): it
tells a person not to edit the page by hand, and it proves ownership where tags cannot be read. A dashboard is
owned when its tags say so or its footer does. Tags are not a compared field (they would drift forever on
moto); the footer is part of the body, so it is.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from controller.errors import TemporaryError
from controller.kinds.base import Context, FieldPolicy, FieldRule, Kind, LiveResource, check_name, spec_of
from controller.kinds.prefetch import tags_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import json_text, tags_from_list, tags_to_list, user_tags
from controller.ownership import desired_tags, is_owned, owned_key
from controller.specs.fields import SpecModel, in_range, simple_name

_log = logging.getLogger(__name__)
FOOTER_HEIGHT = 1
_FOOTER = re.compile(r"^Managed by huntazectl: stack `(?P<stack>[^`]+)`, resource `(?P<key>[^`]+)`\.")


class Widget(SpecModel):
    type: Literal["metric", "text", "log", "alarm", "explorer", "custom"]
    x: Annotated[int, AfterValidator(in_range(0, 23))] | None = None
    y: Annotated[int, AfterValidator(in_range(0, 10000))] | None = None
    width: Annotated[int, AfterValidator(in_range(1, 24))] = 6
    height: Annotated[int, AfterValidator(in_range(1, 1000))] = 6
    properties: dict[str, Any]


class DashboardBody(SpecModel):
    widgets: list[Widget] = Field(min_length=1, max_length=500)
    start: str | None = None
    end: str | None = None
    period_override: Literal["auto", "inherit"] | None = None


DASHBOARD_NAME = simple_name("dashboard name")


class DashboardSpec(SpecModel):
    dashboard_name: Annotated[str, AfterValidator(DASHBOARD_NAME)] | None = None  # defaults to metadata.name
    body: DashboardBody
    tags: dict[str, str] = Field(default_factory=dict)


def dashboard_name(manifest: Manifest) -> str:
    spec = spec_of(manifest, DashboardSpec)
    return spec.dashboard_name or manifest.metadata.name


def dashboard_arn(name: str, account_id: str) -> str:
    return f"arn:aws:cloudwatch::{account_id}:dashboard/{name}"


def _body(manifest: Manifest, stack: str) -> Any:
    """The spec's body plus the ownership footer, full width below the lowest widget."""
    spec = spec_of(manifest, DashboardSpec)
    body = spec.body.model_dump(by_alias=True, exclude_none=True)
    bottom = max(((w.get("y") or 0) + w["height"] for w in body["widgets"]), default=0)
    markdown = (
        f"Managed by huntazectl: stack `{stack}`, resource `{manifest.key}`. "
        "Change its manifest, not this page: manual edits are reverted."
    )
    footer = {
        "type": "text",
        "x": 0,
        "y": bottom,
        "width": 24,
        "height": FOOTER_HEIGHT,
        "properties": {"markdown": markdown},
    }
    return json_text({**body, "widgets": [*body["widgets"], footer]})


def footer_owner(body: Any) -> tuple[str, ResourceKey] | None:
    """(stack, key) from a body's ownership footer, if it has one."""
    widgets = body.get("widgets") if isinstance(body, dict) else None
    for widget in reversed(widgets or []):
        markdown = str((widget.get("properties") or {}).get("markdown", ""))
        match = _FOOTER.match(markdown)
        if match:
            try:
                return match["stack"], ResourceKey.parse(match["key"])
            except ValueError:
                return None
    return None


@register
class DashboardKind(Kind[DashboardSpec]):
    kind = "Dashboard"
    spec_model = DashboardSpec
    not_found_codes = frozenset({"ResourceNotFound", "ResourceNotFoundException"})
    rules = {
        "dashboardName": FieldRule(FieldPolicy.IMMUTABLE, "a dashboard is identified by its name"),
    }

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        spec = self.spec(manifest)
        return check_name(manifest, spec.dashboard_name, dashboard_name(manifest), DASHBOARD_NAME, "dashboardName")

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        return []

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        return {"dashboardName": dashboard_name(manifest), "body": _body(manifest, ctx.stack)}

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        found = self.read_or_none(ctx.client("cloudwatch").get_dashboard, DashboardName=dashboard_name(manifest))
        return None if found is None else self._live(manifest.key, found, ctx)

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        self._put(desired, ctx)
        arn = dashboard_arn(desired["dashboardName"], ctx.account_id)
        spec = self.spec(manifest)
        tags = desired_tags(manifest, ctx.stack, spec.tags)
        # moto cannot tag dashboards; real CloudWatch can. Untagged means "never pruned", not an error.
        with self.absent_ok():
            ctx.client("cloudwatch").tag_resource(ResourceARN=arn, Tags=tags_to_list(tags))
        live = self.read(manifest, ctx)
        if live is None:
            raise TemporaryError(str(manifest.key), "not visible yet after PutDashboard", delay=2)
        return live

    def update(
        self,
        manifest: Manifest,
        live: LiveResource,
        desired: dict[str, Any],
        changed: list[str],
        ctx: Context,
    ) -> LiveResource:
        self._put(desired, ctx)
        updated = self.read(manifest, ctx)
        if updated is None:
            raise TemporaryError(str(manifest.key), "not visible yet after PutDashboard", delay=2)
        return updated

    def delete(self, live: LiveResource, ctx: Context) -> None:
        ctx.client("cloudwatch").delete_dashboards(DashboardNames=[live.fields["dashboardName"]])

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        cw = ctx.client("cloudwatch")
        owned: list[LiveResource] = []
        for page in cw.get_paginator("list_dashboards").paginate():
            for entry in page.get("DashboardEntries", []):
                found = cw.get_dashboard(DashboardName=entry["DashboardName"])
                live = self._live(None, found, ctx)
                if live.owned:
                    owned.append(live)
        return owned

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        return "nothing but the dashboard's URL (dashboards hold no data)"

    def _put(self, desired: dict[str, Any], ctx: Context) -> None:
        body = json.dumps(desired["body"], sort_keys=True, separators=(",", ":"))
        result = ctx.client("cloudwatch").put_dashboard(DashboardName=desired["dashboardName"], DashboardBody=body)
        for problem in result.get("DashboardValidationMessages") or []:
            # Warnings only (errors fail the call): the dashboard is stored, a person should still see them.
            _log.warning(
                "dashboard %s: %s: %s",
                desired["dashboardName"],
                problem.get("DataPath", ""),
                problem.get("Message", ""),
            )

    def _live(self, key: ResourceKey | None, found: dict[str, Any], ctx: Context) -> LiveResource:
        tags = self._tags(ctx, found["DashboardArn"])
        body = json_text(found.get("DashboardBody"))
        footer = footer_owner(body)
        owned = is_owned(tags, ctx.stack) or (footer is not None and footer[0] == ctx.stack)
        footer_key = footer[1] if footer is not None else None
        return LiveResource(
            key=key or owned_key(tags) or footer_key or ResourceKey(kind="Dashboard", name=found["DashboardName"]),
            physical_id=found["DashboardArn"],
            fields={"dashboardName": found["DashboardName"], "body": body},
            outputs={"arn": found["DashboardArn"], "name": found["DashboardName"]},
            tags=tags,
            owned=owned,
        )

    def _tags(self, ctx: Context, arn: str) -> dict[str, str]:
        cached = tags_of(ctx, arn)
        if cached is not None:
            return user_tags(cached)
        found = self.read_or_none(ctx.client("cloudwatch").list_tags_for_resource, ResourceARN=arn)
        return user_tags(tags_from_list((found or {}).get("Tags")))
