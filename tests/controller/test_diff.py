"""The diff value: verdicts per field under a kind's rules."""

from __future__ import annotations

from controller.diff import ABSENT, Verdict, compute_delta
from controller.kinds.base import FieldPolicy, FieldRule
from controller.model import ResourceKey

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
