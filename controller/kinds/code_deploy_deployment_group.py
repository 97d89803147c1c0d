"""Kind ``CodeDeployDeploymentGroup``: a CodeDeploy deployment group for a Lambda alias (the gate's ``live``).

Registered with `controller.kinds.registry`; the reconciler calls the verbs. The group belongs to an application
(``applicationRef``, kind ``CodeDeployApplication``) and names the service role CodeDeploy acts with
(``serviceRoleRef``, kind ``Role``, or ``serviceRoleArn``). What a Lambda deployment of the group does:

- ``deploymentConfigName``: one of CodeDeploy's predefined Lambda configurations
  (``CodeDeployDefault.LambdaCanary10Percent5Minutes``...; the same set as the Function kind's strategies);
- ``alarmConfiguration``: the alarms CodeDeploy watches while it shifts traffic (at most 10); one in ALARM stops
  the deployment;
- ``autoRollbackConfiguration``: on which events (DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM,
  DEPLOYMENT_STOP_ON_REQUEST) the alias returns to the old version;
- ``deploymentStyle``: a Lambda deployment group is always BLUE_GREEN WITH_TRAFFIC_CONTROL (CodeDeploy refuses
  anything else for the Lambda compute platform); written down so the spec says what the group does.

All of these change in place with UpdateDeploymentGroup (only the changed fields are sent). The application
cannot change (the group lives in it) and the group is found by its name, so both are immutable here. Both sides
are normalized: alarm names and rollback events sorted, CodeDeploy's unset defaults filled (alarms disabled,
rollback disabled). Locally, moto lacks UpdateDeploymentGroup and DeleteDeploymentGroup and drops
``alarmConfiguration``; `localplane.codedeploy_api` fills those gaps in the emulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from controller import codedeploy
from controller.errors import TemporaryError
from controller.kinds.base import Context, FieldPolicy, FieldRule, Kind, LiveResource, check_name, spec_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import tags_to_list
from controller.ownership import desired_tags, is_owned, owned_key
from controller.specs.fields import ARN, RefTo, SpecModel, aws_name, one_of

GROUP_NAME = aws_name("deploymentGroupName", r"[A-Za-z0-9._+=-]+", 100, "letters, digits and '.', '_', '-', "
                      "'+', '='")
MAX_ALARMS = 10  # CodeDeploy: at most 10 alarms per deployment group
RollbackEvent = Literal["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"]
_NO_ALARMS: dict[str, Any] = {"enabled": False, "ignorePollAlarmFailure": False, "alarms": []}
_NO_ROLLBACK: dict[str, Any] = {"enabled": False, "events": []}


class AlarmConfiguration(SpecModel):
    enabled: bool = True
    alarms: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(default_factory=list)
    ignore_poll_alarm_failure: bool = False

    @model_validator(mode="after")
    def _rules(self) -> AlarmConfiguration:
        if len(self.alarms) > MAX_ALARMS:
            raise ValueError(f"alarms: CodeDeploy watches at most {MAX_ALARMS} alarms per deployment group "
                             f"(got {len(self.alarms)}); combine some into a composite alarm")
        if len(set(self.alarms)) != len(self.alarms):
            raise ValueError("alarms: each alarm once")
        if self.enabled and not self.alarms:
            raise ValueError("enabled needs at least one alarm name in alarms")
        return self


class AutoRollbackConfiguration(SpecModel):
    enabled: bool = True
    events: list[RollbackEvent] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rules(self) -> AutoRollbackConfiguration:
        if self.enabled and not self.events:
            raise ValueError("enabled needs at least one event (DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM, "
                             "DEPLOYMENT_STOP_ON_REQUEST)")
        if len(set(self.events)) != len(self.events):
            raise ValueError("events: each event once")
        return self


class DeploymentStyle(SpecModel):
    # CodeDeploy refuses every other style for the Lambda compute platform.
    deployment_type: Literal["BLUE_GREEN"] = "BLUE_GREEN"
    deployment_option: Literal["WITH_TRAFFIC_CONTROL"] = "WITH_TRAFFIC_CONTROL"


class CodeDeployDeploymentGroupSpec(SpecModel):
    deployment_group_name: Annotated[str, AfterValidator(GROUP_NAME)] | None = None  # defaults to metadata.name
    application_ref: Annotated[str, RefTo("CodeDeployApplication")]
    service_role_ref: Annotated[str, RefTo("Role")] | None = None
    service_role_arn: ARN | None = None
    deployment_config_name: Annotated[str, AfterValidator(one_of(*codedeploy.LAMBDA_CONFIGS))] = (
        "CodeDeployDefault.LambdaAllAtOnce")
    alarm_configuration: AlarmConfiguration | None = None
    auto_rollback_configuration: AutoRollbackConfiguration | None = None
    deployment_style: DeploymentStyle = Field(default_factory=DeploymentStyle)
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_role(self) -> CodeDeployDeploymentGroupSpec:
        if (self.service_role_ref is None) == (self.service_role_arn is None):
            raise ValueError("set exactly one of serviceRoleRef or serviceRoleArn")
        return self


def group_name(manifest: Manifest) -> str:
    return spec_of(manifest, CodeDeployDeploymentGroupSpec).deployment_group_name or manifest.metadata.name


def _application_key(manifest: Manifest) -> ResourceKey:
    return ResourceKey(kind="CodeDeployApplication", name=spec_of(manifest, CodeDeployDeploymentGroupSpec)
                       .application_ref)


def _alarms_field(given: Mapping[str, Any] | None) -> dict[str, Any]:
    """alarmConfiguration, normalized: enabled, ignorePollAlarmFailure and the sorted alarm names."""
    given = given or _NO_ALARMS
    names = sorted(a["name"] if isinstance(a, Mapping) else str(a) for a in given.get("alarms") or [])
    return {"enabled": bool(given.get("enabled", False)),
            "ignorePollAlarmFailure": bool(given.get("ignorePollAlarmFailure", False)), "alarms": names}


def _rollback_field(given: Mapping[str, Any] | None) -> dict[str, Any]:
    given = given or _NO_ROLLBACK
    return {"enabled": bool(given.get("enabled", False)), "events": sorted(given.get("events") or [])}


def _style_field(given: Mapping[str, Any] | None) -> dict[str, str | None]:
    given = given or {}
    return {"deploymentType": given.get("deploymentType"), "deploymentOption": given.get("deploymentOption")}


@register
class CodeDeployDeploymentGroupKind(Kind[CodeDeployDeploymentGroupSpec]):
    kind = "CodeDeployDeploymentGroup"
    spec_model = CodeDeployDeploymentGroupSpec
    not_found_codes = frozenset({"DeploymentGroupDoesNotExistException", "ApplicationDoesNotExistException"})
    rules = {
        "applicationName": FieldRule(FieldPolicy.IMMUTABLE, "a deployment group lives in its application"),
        "deploymentGroupName": FieldRule(FieldPolicy.IMMUTABLE, "the deployment group is found by its name"),
    }

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        given = self.spec(manifest).deployment_group_name
        problems = check_name(manifest, given, group_name(manifest), GROUP_NAME, "deploymentGroupName")
        app = stack.get(_application_key(manifest))
        platform = getattr(app.spec, "compute_platform", "Lambda") if app is not None else "Lambda"
        if platform != "Lambda":
            problems.append(("spec.applicationRef", f"application {app.metadata.name if app else ''} has compute "
                             f"platform {platform}: this kind makes Lambda deployment groups only (set the "
                             "application's computePlatform to Lambda)"))
        return problems

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        spec = self.spec(manifest)
        refs = [_application_key(manifest)]
        if spec.service_role_ref:
            refs.append(ResourceKey(kind="Role", name=spec.service_role_ref))
        return refs

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        role = ctx.output(ResourceKey(kind="Role", name=spec.service_role_ref)) if spec.service_role_ref \
            else spec.service_role_arn
        alarms = spec.alarm_configuration
        rollback = spec.auto_rollback_configuration
        return {
            "applicationName": ctx.output(_application_key(manifest), "name"),
            "deploymentGroupName": group_name(manifest),
            "serviceRoleArn": role,
            "deploymentConfigName": spec.deployment_config_name,
            "alarmConfiguration": _alarms_field(alarms.model_dump(by_alias=True) if alarms else None),
            "autoRollbackConfiguration": _rollback_field(rollback.model_dump(by_alias=True) if rollback else None),
            "deploymentStyle": _style_field(spec.deployment_style.model_dump(by_alias=True)),
            "tags": desired_tags(manifest, ctx.stack, spec.tags),
        }

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        application = ctx.resolved.get(_application_key(manifest), {}).get("name")
        if application is None:  # not applied in this run (diff of one file): the ref's default name
            application = _application_key(manifest).name
        return self._live(application, group_name(manifest), ctx, manifest.key)

    def _live(self, application: str, name: str, ctx: Context, key: ResourceKey | None = None) -> LiveResource | None:
        found = self.read_or_none(ctx.client("codedeploy").get_deployment_group, applicationName=application,
                                  deploymentGroupName=name)
        if found is None:
            return None
        group = found["deploymentGroupInfo"]
        arn = codedeploy.deployment_group_arn(ctx, application, name)
        tags = codedeploy.read_tags(ctx, arn)
        fields = {
            "applicationName": group["applicationName"],
            "deploymentGroupName": group["deploymentGroupName"],
            "serviceRoleArn": group.get("serviceRoleArn"),
            "deploymentConfigName": group.get("deploymentConfigName"),
            "alarmConfiguration": _alarms_field(group.get("alarmConfiguration")),
            "autoRollbackConfiguration": _rollback_field(group.get("autoRollbackConfiguration")),
            "deploymentStyle": _style_field(group.get("deploymentStyle")),
            "tags": tags,
        }
        resolved = key or owned_key(tags) or ResourceKey(kind=self.kind, name=name)
        outputs = {"name": name, "arn": arn, "applicationName": application}
        return LiveResource(resolved, name, fields, outputs, tags, is_owned(tags, ctx.stack))

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        ctx.client("codedeploy").create_deployment_group(
            applicationName=desired["applicationName"], deploymentGroupName=desired["deploymentGroupName"],
            serviceRoleArn=desired["serviceRoleArn"], tags=tags_to_list(desired["tags"]),
            **_settings_args(desired, ["deploymentConfigName", "alarmConfiguration", "autoRollbackConfiguration",
                                       "deploymentStyle"]),
        )
        return self._reread(manifest, ctx)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        settings = [c for c in changed if c in _SETTINGS]
        if "serviceRoleArn" in changed:
            settings.append("serviceRoleArn")
        if settings:
            ctx.client("codedeploy").update_deployment_group(
                applicationName=live.outputs["applicationName"], currentDeploymentGroupName=live.physical_id,
                **_settings_args(desired, settings),
            )
        if "tags" in changed:
            codedeploy.sync_tags(ctx, live.outputs["arn"], desired["tags"], live.tags)
        return self._reread(manifest, ctx)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        with self.absent_ok():
            ctx.client("codedeploy").delete_deployment_group(applicationName=live.outputs["applicationName"],
                                                             deploymentGroupName=live.physical_id)

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        client = ctx.client("codedeploy")
        owned: list[LiveResource] = []
        for page in client.get_paginator("list_applications").paginate():
            for application in page.get("applications", []):
                for group_page in client.get_paginator("list_deployment_groups").paginate(
                        applicationName=application):
                    for name in group_page.get("deploymentGroups", []):
                        live = self._live(application, name, ctx)
                        if live is not None and live.owned:
                            owned.append(live)
        return owned

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        return (f"deployment group {live.physical_id} of application {live.outputs['applicationName']} and its "
                "deployment history (a deployment in progress is stopped)")

    def _reread(self, manifest: Manifest, ctx: Context) -> LiveResource:
        live = self.read(manifest, ctx)
        if live is None:
            raise TemporaryError(str(manifest.key), "deployment group not visible yet after the write", delay=2)
        return live


_SETTINGS = ("deploymentConfigName", "alarmConfiguration", "autoRollbackConfiguration", "deploymentStyle")


def _settings_args(desired: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """CreateDeploymentGroup/UpdateDeploymentGroup arguments for the normalized fields ``names``."""
    args: dict[str, Any] = {}
    for name in names:
        value = desired[name]
        if name == "alarmConfiguration":
            value = {**value, "alarms": [{"name": alarm} for alarm in value["alarms"]]}
        args[name] = value
    return args
