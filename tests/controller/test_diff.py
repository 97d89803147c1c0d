"""The diff value: verdicts per field under a kind's rules."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from controller.claims import rules_by_key
from controller.diff import ABSENT, Verdict, compute_delta
from controller.kinds.base import Context, FieldClaim, FieldPolicy, FieldRule, KindHandler, LiveResource
from controller.model import Manifest, Metadata, ResourceKey, Source

KEY = ResourceKey(kind="Queue", name="q")


def test_compute_delta_equal_fields_have_equal_verdict_and_no_drift() -> None:
    delta = compute_delta(KEY, {"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 2}, "extra": 9})
    assert not delta.has_drift
    assert {f.path: f.verdict for f in delta.fields} == {"a": Verdict.EQUAL, "b": Verdict.EQUAL}


def test_compute_delta_changed_nested_field_reports_dotted_path_and_top_field() -> None:
    delta = compute_delta(KEY, {"tags": {"a": "1", "b": "2"}}, {"tags": {"a": "1", "b": "3", "c": "4"}})
    drift = {f.path: (f.desired, f.live) for f in delta.drift}
    assert drift == {"tags.b": ("2", "3"), "tags.c": (ABSENT, "4")}
    assert delta.changed_fields == ["tags"]


def test_compute_delta_immutable_change_requires_replacement() -> None:
    rules = {"fifoQueue": FieldRule(FieldPolicy.IMMUTABLE)}
    delta = compute_delta(KEY, {"fifoQueue": True, "x": 1}, {"fifoQueue": False, "x": 1}, rules)
    assert delta.needs_replacement and delta.replaced_fields == ["fifoQueue"]
    assert delta.changed_fields == []


def test_compute_delta_ignored_field_is_never_drift_and_says_why() -> None:
    rules = {"desiredCount": FieldRule(FieldPolicy.IGNORED, "owned by autoscaling")}
    delta = compute_delta(KEY, {"desiredCount": 1}, {"desiredCount": 7}, rules)
    (field,) = delta.fields
    assert field.verdict is Verdict.IGNORED and field.reason == "owned by autoscaling"
    assert not delta.has_drift


def test_compute_delta_unobservable_field_absent_live_is_reported_not_drift() -> None:
    rules = {"capacityProviderStrategy": FieldRule(FieldPolicy.UNOBSERVABLE, "moto does not return it")}
    delta = compute_delta(KEY, {"capacityProviderStrategy": [{"base": 0}]}, {}, rules)
    (field,) = delta.fields
    assert field.verdict is Verdict.UNOBSERVABLE and not delta.has_drift


def test_compute_delta_nested_unobservable_rule_applies_to_children() -> None:
    rules = {"svc.strategy": FieldRule(FieldPolicy.UNOBSERVABLE)}
    delta = compute_delta(KEY, {"svc": {"strategy": 1, "n": 2}}, {"svc": {"n": 2}}, rules)
    assert {f.path: f.verdict for f in delta.fields} == {
        "svc.strategy": Verdict.UNOBSERVABLE, "svc.n": Verdict.EQUAL}


def test_compute_delta_missing_live_resource_marks_every_field_changed() -> None:
    delta = compute_delta(KEY, {"a": 1, "b": 2}, None)
    assert delta.changed_fields == ["a", "b"]


def test_compute_delta_live_field_absent_without_rule_compares_as_none() -> None:
    assert not compute_delta(KEY, {"kms": None}, {}).has_drift
    assert compute_delta(KEY, {"kms": "k"}, {}).changed_fields == ["kms"]


def test_delta_as_dict_is_json_ready() -> None:
    delta = compute_delta(KEY, {"a": 1}, {"a": 2})
    assert delta.as_dict() == {"resource": "Queue/q", "fields": [
        {"path": "a", "desired": 1, "live": 2, "verdict": "changed", "reason": ""}]}


WHEN_ABSENT = {"strategy": FieldRule(FieldPolicy.UNOBSERVABLE_WHEN_ABSENT, "the API leaves it out after create")}


@pytest.mark.parametrize(
    ("live", "verdict", "reason"),
    [
        ({}, Verdict.UNOBSERVABLE, "the API leaves it out after create"),
        ({"strategy": [{"w": 1}]}, Verdict.EQUAL, ""),
        ({"strategy": [{"w": 2}]}, Verdict.CHANGED, ""),
    ],
    ids=["absent-unobservable", "returned-equal", "returned-changed"],
)
def test_compute_delta_unobservable_when_absent_compares_only_a_returned_field(
    live: dict[str, Any], verdict: Verdict, reason: str
) -> None:
    [field] = compute_delta(KEY, {"strategy": [{"w": 1}]}, live, WHEN_ABSENT).fields
    assert (field.verdict, field.reason) == (verdict, reason)


def test_field_rules_claim_by_another_manifest_ignores_the_field_only_in_that_stack() -> None:
    class Claimer(_Inert):
        kind = "Claimer"

        def claims(self, manifest: Manifest) -> list[FieldClaim]:
            return [FieldClaim(ResourceKey(kind="Owner", name="o"), "count", f"owned via {manifest.key}")]

    class Owner(_Inert):
        kind = "Owner"
        rules = {"name": FieldRule(FieldPolicy.IMMUTABLE)}

    handlers: dict[str, KindHandler] = {"Claimer": Claimer(), "Owner": Owner()}
    owner, claimer = _manifest("Owner", "o"), _manifest("Claimer", "c")
    with_claim = rules_by_key([owner, claimer], handlers.__getitem__)[owner.key]
    alone = rules_by_key([owner], handlers.__getitem__)[owner.key]
    assert with_claim == {"name": FieldRule(FieldPolicy.IMMUTABLE),
                          "count": FieldRule(FieldPolicy.IGNORED, "owned via Claimer/c")}
    assert alone == {"name": FieldRule(FieldPolicy.IMMUTABLE)}
    assert compute_delta(KEY, {"count": 1}, {"count": 3}, with_claim).fields[0].verdict is Verdict.IGNORED
    assert compute_delta(KEY, {"count": 1}, {"count": 3}, alone).changed_fields == ["count"]


def _manifest(kind: str, name: str) -> Manifest:
    return Manifest(kind=kind, metadata=Metadata(name=name), spec=None, source=Source(file="m.yaml", line=1))


class _Inert(KindHandler):
    """A kind whose verbs are never called: only its rules and claims matter here."""

    spec_model = BaseModel

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        return []

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        raise NotImplementedError

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        raise NotImplementedError

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        raise NotImplementedError

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        raise NotImplementedError

    def delete(self, live: LiveResource, ctx: Context) -> None:
        raise NotImplementedError

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        raise NotImplementedError


@pytest.mark.parametrize(("live", "verdict"), [(1, Verdict.IGNORED), (4, Verdict.IGNORED), (0, Verdict.CHANGED),
                                               (5, Verdict.CHANGED), (9, Verdict.CHANGED)])
def test_compute_delta_ignored_field_with_bounds_is_drift_only_outside_them(live: int, verdict: Verdict) -> None:
    rules = {"desiredCount": FieldRule(FieldPolicy.IGNORED, "owned by autoscaling", bounds=(1, 4))}
    (field,) = compute_delta(KEY, {"desiredCount": 2}, {"desiredCount": live}, rules).fields
    assert field.verdict is verdict
    assert (verdict is Verdict.CHANGED) == ("outside 1..4" in field.reason)


PENDING_TOPIC = "(known after apply: Topic/huntaze-alerts.arn)"
PENDING_QUEUE = "(known after apply: Queue/q.fifo.url)"


@pytest.mark.parametrize(("desired", "live", "equal"), [
    ([PENDING_TOPIC], ["arn:aws:sns:us-east-1:123456789012:huntaze-alerts"], True),
    ([PENDING_TOPIC], ["arn:aws:sns:us-east-1:123456789012:huntaze-alerts-old"], False),
    ([PENDING_TOPIC], ["arn:aws:sns:us-east-1:123456789012:other"], False),
    ({"deadLetterTargetArn": PENDING_QUEUE}, {"deadLetterTargetArn": "http://h/123456789012/q.fifo"}, True),
    (f"prefix {PENDING_TOPIC}", "prefix arn:aws:sns:r:1:huntaze-alerts", True),
    ([PENDING_TOPIC, PENDING_TOPIC], ["arn:aws:sns:r:1:huntaze-alerts"], False),
])
def test_compute_delta_pending_reference_compares_by_name(desired: Any, live: Any, equal: bool) -> None:
    (field,) = compute_delta(KEY, {"actions": desired}, {"actions": live}).fields
    assert (field.verdict is Verdict.EQUAL) is equal
    if equal:
        assert "compared by name" in field.reason
