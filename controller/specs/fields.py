"""Building blocks for the ``spec`` models of the kinds: a frozen camelCase base model and range checks.

Used by every module in `controller.kinds` (``spec_model``). YAML keys are camelCase (``visibilityTimeout``)
while Python fields are snake_case; pydantic reports errors under the YAML name, so
`controller.specs.validation` can point at the key's line. Range checks say ``must be 0..43200`` in words a
person reads in one glance, instead of two separate "greater/less than" messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class SpecModel(BaseModel):
    """Base of every kind's spec: frozen, unknown keys refused, camelCase in YAML."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


def in_range(low: int, high: int) -> Callable[[int], int]:
    """An ``AfterValidator`` for ``Annotated[int, AfterValidator(in_range(0, 43200))]``."""

    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be {low}..{high}")
        return value

    return check


def one_of(*allowed: Any) -> Callable[[Any], Any]:
    """An ``AfterValidator`` accepting only the listed values (e.g. CloudWatch Logs retention days)."""

    def check(value: Any) -> Any:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(str(a) for a in allowed)}")
        return value

    return check


def ref_name(value: str | dict[str, Any]) -> str:
    """A reference written as ``queueRef: name`` or ``queueRef: {name: name}`` → the name."""
    if isinstance(value, dict):
        return str(value["name"])
    return value
