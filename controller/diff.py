"""The diff as a value (ACK's ``Delta``): one `FieldDiff` per field with desired, live and a verdict.

Called by `controller.reconciler` (to decide create/update/replace/skip) and rendered by `controller.report`
for `apply`, `diff` and `drift`. It never talks to AWS and never imports a kind: it compares two *normalized*
field dicts (see `controller.normalize`) under the kind's `FieldRule`s.

Verdicts:
    changed                     the live value differs: an update is needed
    equal_after_normalization   same meaning on both sides (e.g. "300" vs 300 once normalized)
    ignored                     owned by another actor (desiredCount under autoscaling): never drift while
                                the live value is inside the range that actor may set (the rule's bounds);
                                outside it, it is ``changed`` (drift that apply corrects)
    unobservable                the live API does not return it here: reported, never drift (a field with the
                                policy UNOBSERVABLE_WHEN_ABSENT gets it only when the live side lacks it, and
                                is compared normally when the API does return it)
    requires_replacement        an immutable field differs: refused unless --allow-replace KIND/NAME
    held                        a deployment engine (or `rollout undo`) rolled it back from the release the
                                spec still asks for: shown with the reason and the next step, never drift,
                                never written until the spec asks for another release (`kinds.base.Hold`)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from controller.kinds.base import FieldPolicy, FieldRule
from controller.model import ResourceKey
from controller.redact import redact


class Verdict(StrEnum):
    CHANGED = "changed"
    EQUAL = "equal_after_normalization"
    IGNORED = "ignored"
    UNOBSERVABLE = "unobservable"
    REQUIRES_REPLACEMENT = "requires_replacement"
    HELD = "held"


DRIFT_VERDICTS = frozenset({Verdict.CHANGED, Verdict.REQUIRES_REPLACEMENT})


class _Absent:
    """Marks a field the live side does not have at all (distinct from a live ``None``)."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class FieldDiff:
    path: str  # dotted: "redrivePolicy.maxReceiveCount"
    desired: Any
    live: Any
    verdict: Verdict
    reason: str = ""

    @property
    def top(self) -> str:
        """The top-level field this path belongs to (what `KindHandler.update` receives)."""
        return self.path.split(".", 1)[0]

    @property
    def is_drift(self) -> bool:
        return self.verdict in DRIFT_VERDICTS

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with credentials masked (`controller.redact`): reports and the journal print this."""
        out = {
            "path": self.path,
            "desired": None if self.desired is ABSENT else redact(self.desired),
            "live": None if self.live is ABSENT else redact(self.live),
            "verdict": str(self.verdict),
            "reason": self.reason,
        }
        if self.desired is ABSENT:
            out["desiredAbsent"] = True
        if self.live is ABSENT:
            out["liveAbsent"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldDiff:
        """The inverse of `as_dict` (values stay masked): renders a JSON report as text."""
        return cls(str(data["path"]), ABSENT if data.get("desiredAbsent") else data["desired"],
                   ABSENT if data.get("liveAbsent") else data["live"], Verdict(data["verdict"]), str(data["reason"]))


@dataclass(frozen=True)
class Delta:
    """Every compared field of one resource."""

    key: ResourceKey
    fields: list[FieldDiff] = field(default_factory=list)

    def having(self, *verdicts: Verdict) -> list[FieldDiff]:
        return [f for f in self.fields if f.verdict in verdicts]

    @property
    def drift(self) -> list[FieldDiff]:
        return [f for f in self.fields if f.is_drift]

    @property
    def has_drift(self) -> bool:
        return any(f.is_drift for f in self.fields)

    @property
    def held(self) -> list[FieldDiff]:
        return [f for f in self.fields if f.verdict is Verdict.HELD]

    @property
    def needs_replacement(self) -> bool:
        return any(f.verdict is Verdict.REQUIRES_REPLACEMENT for f in self.fields)

    @property
    def changed_fields(self) -> list[str]:
        """Top-level names of the fields to update in place (order kept, no duplicates)."""
        return list(dict.fromkeys(f.top for f in self.fields if f.verdict is Verdict.CHANGED))

    @property
    def replaced_fields(self) -> list[str]:
        return list(dict.fromkeys(f.top for f in self.fields if f.verdict is Verdict.REQUIRES_REPLACEMENT))

    def as_dict(self) -> dict[str, Any]:
        return {"resource": str(self.key), "fields": [f.as_dict() for f in self.fields]}


# What `controller.reconciler` resolves a not-yet-created resource's output to in a plan (kept in step with its
# ``_Pending``): "(known after apply: Topic/huntaze-alerts.arn)".
_PENDING = re.compile(r"\(known after apply: ([A-Za-z]+/.+?)\.([A-Za-z0-9_]+)\)")


def pending_keys(value: Any) -> list[str]:
    """The resources (``Kind/name``) whose outputs ``value`` waits for, in order, without duplicates."""
    found: list[str] = []
    if isinstance(value, str):
        found = [m.group(1) for m in _PENDING.finditer(value)]
    elif isinstance(value, Mapping):
        found = [k for v in value.values() for k in pending_keys(v)]
    elif isinstance(value, list | tuple):
        found = [k for v in value for k in pending_keys(v)]
    return list(dict.fromkeys(found))


def matches_pending(desired: Any, live: Any) -> bool:
    """``live`` is what ``desired`` becomes once each pending output is known, assuming the resource keeps its
    name: an ARN, URL or name ends with it (``arn:aws:sns:...:huntaze-alerts``, ``https://.../q.fifo``).

    So a plan does not show dependents as changed when a resource they point at is (re)created under the same
    name: apply will not change them either, since the new ARN is the one they already hold.
    """
    if isinstance(desired, str):
        if not isinstance(live, str) or "(known after apply:" not in desired:
            return bool(desired == live)
        pattern = ""
        position = 0
        for match in _PENDING.finditer(desired):
            name = match.group(1).split("/", 1)[1]
            pattern += re.escape(desired[position:match.start()]) + rf"(?:[^\s\"]*[:/])?{re.escape(name)}"
            position = match.end()
        pattern += re.escape(desired[position:])
        return re.fullmatch(pattern, live) is not None
    if isinstance(desired, Mapping):
        return (isinstance(live, Mapping) and set(desired) == set(live)
                and all(matches_pending(v, live[k]) for k, v in desired.items()))
    if isinstance(desired, list | tuple):
        return (isinstance(live, list | tuple) and len(desired) == len(live)
                and all(matches_pending(d, x) for d, x in zip(desired, live, strict=True)))
    return bool(desired == live)


def rule_for(path: str, rules: Mapping[str, FieldRule]) -> FieldRule | None:
    """The most specific rule for a dotted path: "a.b.c", else "a.b", else "a"."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        rule = rules.get(".".join(parts[:end]))
        if rule is not None:
            return rule
    return None


def compute_delta(
    key: ResourceKey,
    desired: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    rules: Mapping[str, FieldRule] | None = None,
) -> Delta:
    """Compare every desired field with the live one. Live-only fields are not ours and are not compared.

    With ``live`` None (the resource does not exist yet) every field is ``changed``.
    """
    rules = rules or {}
    out: list[FieldDiff] = []
    for name in desired:
        live_value = ABSENT if live is None else live.get(name, ABSENT)
        if live is None:
            out.append(FieldDiff(name, desired[name], ABSENT, Verdict.CHANGED, "does not exist yet"))
            continue
        out.extend(_compare(name, desired[name], live_value, rules))
    return Delta(key, out)


def _compare(path: str, desired: Any, live: Any, rules: Mapping[str, FieldRule]) -> list[FieldDiff]:
    rule = rule_for(path, rules)
    policy = rule.policy if rule else FieldPolicy.MUTABLE
    reason = rule.reason if rule else ""
    if policy is FieldPolicy.IGNORED:
        bounds = rule.bounds if rule else None
        if bounds is not None and _outside(live, bounds):
            low, high = (int(b) if float(b).is_integer() else b for b in bounds)
            why = f"outside {low}..{high}, the range its owner may set: apply sets the spec's value"
            return [FieldDiff(path, desired, live, Verdict.CHANGED, why)]
        return [FieldDiff(path, desired, live, Verdict.IGNORED, reason or "owned by another actor")]
    if policy is FieldPolicy.UNOBSERVABLE or (live is ABSENT and _has_unobservable_child(path, rules)):
        why = reason or "the live API does not return this field here"
        return [FieldDiff(path, desired, live, Verdict.UNOBSERVABLE, why)]
    if policy is FieldPolicy.HELD and desired != (None if live is ABSENT else live):
        return [FieldDiff(path, desired, live, Verdict.HELD, reason or "held: rolled back")]
    if policy is FieldPolicy.UNOBSERVABLE_WHEN_ABSENT:  # returned this time: compared like any mutable field
        policy, reason = FieldPolicy.MUTABLE, ""
    if desired == (None if live is ABSENT else live):
        return [FieldDiff(path, desired, live, Verdict.EQUAL)]
    pending = pending_keys(desired)
    if pending and live is not ABSENT and matches_pending(desired, live):
        why = f"compared by name: {', '.join(pending)} keeps its name, so its new ARN is this one"
        return [FieldDiff(path, desired, live, Verdict.EQUAL, why)]
    if isinstance(desired, Mapping) and isinstance(live, Mapping):
        children: list[FieldDiff] = []
        for name in dict.fromkeys([*desired, *live]):
            children.extend(
                _compare(f"{path}.{name}", desired.get(name, ABSENT), live.get(name, ABSENT), rules)
            )
        return [c for c in children if not (c.desired is ABSENT and c.live is ABSENT)]
    if policy is FieldPolicy.IMMUTABLE:
        why = reason or "immutable: changing it means deleting and recreating the resource"
        return [FieldDiff(path, desired, live, Verdict.REQUIRES_REPLACEMENT, why)]
    return [FieldDiff(path, desired, live, Verdict.CHANGED, reason)]


def _outside(live: Any, bounds: tuple[float, float]) -> bool:
    if isinstance(live, bool) or not isinstance(live, int | float):
        return False
    return not bounds[0] <= live <= bounds[1]


_UNOBSERVABLE_WHEN_ABSENT = frozenset({FieldPolicy.UNOBSERVABLE, FieldPolicy.UNOBSERVABLE_WHEN_ABSENT})


def _has_unobservable_child(path: str, rules: Mapping[str, FieldRule]) -> bool:
    """``path`` is absent live and it, or a field under it, is one the API may leave out."""
    prefix = f"{path}."
    return any(
        (k == path or k.startswith(prefix)) and r.policy in _UNOBSERVABLE_WHEN_ABSENT for k, r in rules.items()
    )
