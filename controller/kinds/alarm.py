"""Kind ``Alarm``: one CloudWatch metric alarm (single metric or metric math), actions to SNS topics.

Registered with `controller.kinds.registry`; the reconciler calls the verbs. PutMetricAlarm replaces the whole
alarm, so an update writes every field. Actions name topics by ``topicRef`` (the Topic kind's ``arn`` output),
which also orders topics before alarms. Dimensions are written as a mapping in specs and compared as sorted
``{Name, Value}`` lists; ``datapointsToAlarm`` defaults to ``evaluationPeriods`` and ``treatMissingData`` to
``missing``, as CloudWatch does, so defaults never show as drift.

Alarms that Application Auto Scaling creates for target tracking (``TargetTracking-*``, described "DO NOT EDIT
OR DELETE") belong to it: `list_owned` never reports them, whatever tags they carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from controller.errors import TemporaryError
from controller.kinds.base import Context, FieldPolicy, FieldRule, Kind, LiveResource, spec_of
from controller.kinds.prefetch import batches, put_found, tags_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import tags_from_list, tags_to_list, user_tags
from controller.ownership import desired_tags, is_owned, owned_key, tag_changes
from controller.specs.fields import ARN, RefTo, SpecModel, in_range

Comparison = Literal[
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
]
Statistic = Literal["SampleCount", "Average", "Sum", "Minimum", "Maximum"]
AUTOSCALING_PREFIX = "TargetTracking-"
_ALARMS = "alarm"
AUTOSCALING_DESCRIPTION = "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy"


# CloudWatch: evaluationPeriods x period is at most 7 days, or 1 day when the period is under an hour.
EVALUATION_LIMIT_S = 604800
EVALUATION_LIMIT_SHORT_S = 86400


def _period(value: int) -> int:
    """CloudWatch alarm periods: 10, 20 or 30 s (high resolution) or a multiple of 60 s, up to one day."""
    if not (value in (10, 20, 30) or (value % 60 == 0 and 60 <= value <= 86400)):
        raise ValueError("must be 10, 20, 30 or a multiple of 60 up to 86400 (CloudWatch alarm periods)")
    return value


Period = Annotated[int, AfterValidator(_period)]


class ActionTarget(SpecModel):
    """An alarm action: a Topic of this stack (``topicRef``) or any ARN."""

    topic_ref: Annotated[str, RefTo("Topic")] | None = None
    arn: ARN | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ActionTarget:
        if (self.topic_ref is None) == (self.arn is None):
            raise ValueError("set exactly one of topicRef or arn")
        return self


class Metric(SpecModel):
    namespace: str = Field(min_length=1, max_length=255)
    metric_name: str = Field(min_length=1, max_length=255)
    dimensions: dict[str, str] = Field(default_factory=dict, max_length=30)


class MetricStat(SpecModel):
    metric: Metric
    period: Period
    stat: str = Field(min_length=1)
    unit: str | None = None


class MetricQuery(SpecModel):
    """One entry of a metric-math alarm: a metric (``metricStat``) or an ``expression`` over other ids."""

    id: str = Field(pattern=r"^[a-z][A-Za-z0-9_]{0,254}$")
    metric_stat: MetricStat | None = None
    expression: str | None = Field(None, min_length=1, max_length=1024)
    label: str | None = None
    return_data: bool = False
    period: Period | None = None

    @model_validator(mode="after")
    def _metric_or_expression(self) -> MetricQuery:
        if (self.metric_stat is None) == (self.expression is None):
            raise ValueError(f"metric {self.id!r}: set exactly one of metricStat or expression")
        return self


class AlarmSpec(SpecModel):
    alarm_name: str | None = Field(None, min_length=1, max_length=255)
    alarm_description: str = Field("", max_length=1024)
    actions_enabled: bool = True
    alarm_actions: list[ActionTarget] = Field(default_factory=list, max_length=5)
    ok_actions: list[ActionTarget] = Field(default_factory=list, max_length=5)
    insufficient_data_actions: list[ActionTarget] = Field(default_factory=list, max_length=5)
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict, max_length=30)
    statistic: Statistic | None = None
    extended_statistic: str | None = None
    period: Period | None = None
    unit: str | None = None
    metrics: list[MetricQuery] = Field(default_factory=list, max_length=20)
    evaluation_periods: Annotated[int, AfterValidator(in_range(1, 100000))]
    datapoints_to_alarm: Annotated[int, AfterValidator(in_range(1, 100000))] | None = None
    threshold: float
    comparison_operator: Comparison
    treat_missing_data: Literal["breaching", "notBreaching", "ignore", "missing"] = "missing"
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_metric_form(self) -> AlarmSpec:
        single = self.metric_name is not None
        if single == bool(self.metrics):
            raise ValueError("set either metricName (with namespace, period, statistic) or metrics, not both")
        if single and (self.namespace is None or self.period is None):
            raise ValueError("metricName needs namespace and period")
        if single and (self.statistic is None) == (self.extended_statistic is None):
            raise ValueError("metricName needs exactly one of statistic or extendedStatistic")
        if self.metrics and sum(q.return_data for q in self.metrics) != 1:
            raise ValueError("exactly one entry of metrics must have returnData: true")
        if self.datapoints_to_alarm is not None and self.datapoints_to_alarm > self.evaluation_periods:
            raise ValueError("datapointsToAlarm must be <= evaluationPeriods")
        periods = [self.period] if self.period else [q.metric_stat.period for q in self.metrics if q.metric_stat]
        for period in periods:
            window = self.evaluation_periods * period
            limit = EVALUATION_LIMIT_S if period >= 3600 else EVALUATION_LIMIT_SHORT_S
            if window > limit:
                raise ValueError(f"evaluationPeriods x period is {window} s; CloudWatch evaluates at most {limit} s "
                                 f"({'7 days' if limit == EVALUATION_LIMIT_S else '1 day for periods under an hour'})")
        return self


def alarm_name(manifest: Manifest) -> str:
    spec = spec_of(manifest, AlarmSpec)
    return spec.alarm_name or manifest.metadata.name


def is_autoscaling_alarm(alarm: dict[str, Any]) -> bool:
    """True for the alarms Application Auto Scaling creates and owns for a target-tracking policy."""
    return str(alarm.get("AlarmName", "")).startswith(AUTOSCALING_PREFIX) or str(
        alarm.get("AlarmDescription", "")
    ).startswith(AUTOSCALING_DESCRIPTION)


def _dimensions(dims: Any) -> list[dict[str, str]]:
    pairs = dims.items() if isinstance(dims, dict) else ((d["Name"], d["Value"]) for d in dims or [])
    return [{"Name": str(k), "Value": str(v)} for k, v in sorted(pairs)]


def _query(q: dict[str, Any]) -> dict[str, Any]:
    """A MetricDataQuery (API shape) with defaults filled and dimensions sorted."""
    out: dict[str, Any] = {"Id": q["Id"], "ReturnData": bool(q.get("ReturnData", True))}
    if q.get("Expression"):
        out["Expression"] = q["Expression"]
    if q.get("Label"):
        out["Label"] = q["Label"]
    if q.get("Period"):
        out["Period"] = int(q["Period"])
    stat = q.get("MetricStat")
    if stat:
        metric = stat["Metric"]
        out["MetricStat"] = {
            "Metric": {
                "Namespace": metric["Namespace"],
                "MetricName": metric["MetricName"],
                "Dimensions": _dimensions(metric.get("Dimensions")),
            },
            "Period": int(stat["Period"]),
            "Stat": stat["Stat"],
        }
        if stat.get("Unit"):
            out["MetricStat"]["Unit"] = stat["Unit"]
    return out


def _spec_query(q: MetricQuery) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "Id": q.id,
        "ReturnData": q.return_data,
        "Expression": q.expression,
        "Label": q.label,
        "Period": q.period,
    }
    if q.metric_stat is not None:
        m = q.metric_stat.metric
        raw["MetricStat"] = {
            "Metric": {"Namespace": m.namespace, "MetricName": m.metric_name, "Dimensions": m.dimensions},
            "Period": q.metric_stat.period,
            "Stat": q.metric_stat.stat,
            "Unit": q.metric_stat.unit,
        }
    return _query(raw)


def _single_metric(source: dict[str, Any]) -> dict[str, Any] | None:
    if not source.get("MetricName"):
        return None
    metric = {
        "Namespace": source["Namespace"],
        "MetricName": source["MetricName"],
        "Dimensions": _dimensions(source.get("Dimensions")),
        "Period": int(source["Period"]),
        "Statistic": source.get("Statistic"),
        "ExtendedStatistic": source.get("ExtendedStatistic"),
        "Unit": source.get("Unit"),
    }
    return {k: v for k, v in metric.items() if v is not None}


def _fields(api: dict[str, Any]) -> dict[str, Any]:
    """Normalized fields from a PutMetricAlarm-shaped dict (the desired call or a DescribeAlarms entry)."""
    periods = int(api["EvaluationPeriods"])
    return {
        "alarmName": api["AlarmName"],
        "alarmDescription": api.get("AlarmDescription") or "",
        "actionsEnabled": bool(api.get("ActionsEnabled", True)),
        "alarmActions": sorted(api.get("AlarmActions") or []),
        "okActions": sorted(api.get("OKActions") or []),
        "insufficientDataActions": sorted(api.get("InsufficientDataActions") or []),
        "metric": _single_metric(api),
        "metrics": sorted((_query(q) for q in api.get("Metrics") or []), key=lambda q: str(q["Id"])),
        "evaluationPeriods": periods,
        "datapointsToAlarm": int(api.get("DatapointsToAlarm") or periods),
        "threshold": float(api["Threshold"]),
        "comparisonOperator": api["ComparisonOperator"],
        "treatMissingData": api.get("TreatMissingData") or "missing",
    }


def _put_args(desired: dict[str, Any]) -> dict[str, Any]:
    """Normalized fields → PutMetricAlarm arguments."""
    args: dict[str, Any] = {
        "AlarmName": desired["alarmName"],
        "AlarmDescription": desired["alarmDescription"],
        "ActionsEnabled": desired["actionsEnabled"],
        "AlarmActions": desired["alarmActions"],
        "OKActions": desired["okActions"],
        "InsufficientDataActions": desired["insufficientDataActions"],
        "EvaluationPeriods": desired["evaluationPeriods"],
        "DatapointsToAlarm": desired["datapointsToAlarm"],
        "Threshold": desired["threshold"],
        "ComparisonOperator": desired["comparisonOperator"],
        "TreatMissingData": desired["treatMissingData"],
    }
    if desired["metric"] is not None:
        args.update(desired["metric"])
    else:
        args["Metrics"] = desired["metrics"]
    return args


def _action_arns(targets: list[ActionTarget], ctx: Context) -> list[str]:
    arns = []
    for target in targets:
        if target.topic_ref is not None:
            arns.append(ctx.output(ResourceKey(kind="Topic", name=target.topic_ref), "arn"))
        elif target.arn is not None:
            arns.append(target.arn)
    return arns


@register
class AlarmKind(Kind[AlarmSpec]):
    kind = "Alarm"
    spec_model = AlarmSpec
    not_found_codes = frozenset({"ResourceNotFound", "ResourceNotFoundException"})
    rules = {
        "alarmName": FieldRule(
            FieldPolicy.IMMUTABLE,
            "an alarm is identified by its name; a new name is a new alarm and the old one would keep firing",
        ),
    }

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        spec = self.spec(manifest)
        targets = [*spec.alarm_actions, *spec.ok_actions, *spec.insufficient_data_actions]
        refs = {t.topic_ref for t in targets if t.topic_ref is not None}
        return [ResourceKey(kind="Topic", name=name) for name in sorted(refs)]

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        api: dict[str, Any] = {
            "AlarmName": alarm_name(manifest),
            "AlarmDescription": spec.alarm_description,
            "ActionsEnabled": spec.actions_enabled,
            "AlarmActions": _action_arns(spec.alarm_actions, ctx),
            "OKActions": _action_arns(spec.ok_actions, ctx),
            "InsufficientDataActions": _action_arns(spec.insufficient_data_actions, ctx),
            "EvaluationPeriods": spec.evaluation_periods,
            "DatapointsToAlarm": spec.datapoints_to_alarm,
            "Threshold": spec.threshold,
            "ComparisonOperator": spec.comparison_operator,
            "TreatMissingData": spec.treat_missing_data,
            "Namespace": spec.namespace,
            "MetricName": spec.metric_name,
            "Dimensions": spec.dimensions,
            "Period": spec.period,
            "Statistic": spec.statistic,
            "ExtendedStatistic": spec.extended_statistic,
            "Unit": spec.unit,
        }
        fields = _fields(api)
        fields["metrics"] = sorted((_spec_query(q) for q in spec.metrics), key=lambda q: str(q["Id"]))
        fields["tags"] = desired_tags(manifest, ctx.stack, spec.tags)
        return fields

    def prefetch(self, manifests: Sequence[Manifest], ctx: Context) -> None:
        """Every alarm of the tier in one DescribeAlarms per 100 names (a missing name does not exist)."""
        cw = ctx.client("cloudwatch")
        for batch in batches((alarm_name(m) for m in manifests), 100):
            pages = cw.get_paginator("describe_alarms").paginate(AlarmNames=batch, AlarmTypes=["MetricAlarm"])
            found = {a["AlarmName"]: a for page in pages for a in page.get("MetricAlarms", [])}
            put_found(ctx, _ALARMS, batch, found)

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        prefetched, alarm = ctx.prefetched.take(_ALARMS, alarm_name(manifest))
        if prefetched:
            return None if alarm is None else self._live(manifest.key, alarm, ctx)
        cw = ctx.client("cloudwatch")
        found = cw.describe_alarms(AlarmNames=[alarm_name(manifest)], AlarmTypes=["MetricAlarm"])
        alarms = found.get("MetricAlarms", [])
        if not alarms:
            return None
        return self._live(manifest.key, alarms[0], ctx)

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        tags = tags_to_list(desired["tags"])
        ctx.client("cloudwatch").put_metric_alarm(**_put_args(desired), Tags=tags)
        return self._reread(manifest, ctx)

    def update(
        self,
        manifest: Manifest,
        live: LiveResource,
        desired: dict[str, Any],
        changed: list[str],
        ctx: Context,
    ) -> LiveResource:
        cw = ctx.client("cloudwatch")
        if set(changed) - {"tags"}:
            # PutMetricAlarm overwrites the whole definition (tags kept): send every field, not only `changed`.
            cw.put_metric_alarm(**_put_args(desired))
        if "tags" in changed:
            to_set, to_remove = tag_changes(desired["tags"], live.tags)
            if to_set:
                cw.tag_resource(ResourceARN=live.physical_id, Tags=tags_to_list(to_set))
            if to_remove:
                cw.untag_resource(ResourceARN=live.physical_id, TagKeys=to_remove)
        return self._reread(manifest, ctx)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        ctx.client("cloudwatch").delete_alarms(AlarmNames=[live.fields["alarmName"]])

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        cw = ctx.client("cloudwatch")
        owned: list[LiveResource] = []
        for page in cw.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
            for alarm in page.get("MetricAlarms", []):
                if is_autoscaling_alarm(alarm):
                    continue
                live = self._live(None, alarm, ctx)
                if live.owned:
                    owned.append(live)
        return owned

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        return "the alarm's state and history (it restarts in INSUFFICIENT_DATA)"

    def _live(self, key: ResourceKey | None, alarm: dict[str, Any], ctx: Context) -> LiveResource:
        tags = self._tags(ctx, alarm["AlarmArn"])
        return LiveResource(
            key=key or owned_key(tags) or ResourceKey(kind="Alarm", name=alarm["AlarmName"]),
            physical_id=alarm["AlarmArn"],
            fields={**_fields(alarm), "tags": tags},
            outputs={"arn": alarm["AlarmArn"], "name": alarm["AlarmName"]},
            tags=tags,
            owned=is_owned(tags, ctx.stack),
        )

    def _tags(self, ctx: Context, arn: str) -> dict[str, str]:
        cached = tags_of(ctx, arn)
        if cached is not None:
            return user_tags(cached)
        found = self.read_or_none(ctx.client("cloudwatch").list_tags_for_resource, ResourceARN=arn)
        return user_tags(tags_from_list((found or {}).get("Tags")))

    def _reread(self, manifest: Manifest, ctx: Context) -> LiveResource:
        live = self.read(manifest, ctx)
        if live is None:
            raise TemporaryError(str(manifest.key), "not visible yet after the write", delay=2)
        return live
