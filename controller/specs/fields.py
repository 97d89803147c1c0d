"""Building blocks for the ``spec`` models of the kinds: a frozen camelCase base model, range checks, references.

Used by every module in `controller.kinds` (``spec_model``). YAML keys are camelCase (``visibilityTimeout``)
while Python fields are snake_case; pydantic reports errors under the YAML name, so
`controller.specs.validation` can point at the key's line. Range checks say ``must be 0..43200`` in words a
person reads in one glance, instead of two separate "greater/less than" messages.

Field types more than one kind uses live here, not in a kind module, so that no kind imports another:
`RefTo` marks a reference field (the registry derives the delete order from these marks), `ValueRef` is a
value taken from another resource (Function environment, TaskDefinition environment and secrets), and the AWS
naming rules (`aws_name`, `ARN`) are written once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel

from controller.model import ResourceKey


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


def aws_name(what: str, pattern: str, max_length: int, rule: str, min_length: int = 1) -> Callable[[str], str]:
    """An ``AfterValidator`` for an AWS resource name: length first, then the characters, each in one sentence.

    ``rule`` says in words what ``pattern`` allows (``letters, digits, '-' and '_'``), because a person fixes a
    name from words, not from a regular expression.
    """
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not min_length <= len(value) <= max_length:
            raise ValueError(f"{what} must be {min_length}..{max_length} characters (got {len(value)})")
        if not compiled.fullmatch(value):
            raise ValueError(f"{what} {_shown(value)} may contain only {rule}")
        return value

    return check


def simple_name(what: str, max_length: int = 255) -> Callable[[str], str]:
    """The commonest AWS name rule (ECS clusters, services and families, dashboards, Lambda functions...)."""
    return aws_name(what, r"[A-Za-z0-9_-]+", max_length, "letters, digits, '-' and '_'")


def max_chars(what: str, limit: int) -> Callable[[str], str]:
    """An ``AfterValidator`` for free text AWS bounds (an SNS display name: 100 characters)."""

    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"{what} must be at most {limit} characters (got {len(value)})")
        return value

    return check


def _shown(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


_ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:.+")


def _arn(value: str) -> str:
    if len(value) > 2048 or not _ARN.fullmatch(value):
        raise ValueError(f"ARN {_shown(value)} must have the form arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE "
                         "(at most 2048 characters)")
    return value


ARN = Annotated[str, AfterValidator(_arn)]


@dataclass(frozen=True)
class RefTo:
    """Marks a spec field as a reference to a resource of ``kind``: ``Annotated[str, RefTo("Role")]``.

    `controller.kinds.registry.delete_order` reads these marks from the spec models to order kinds (a kind is
    deleted before the kinds it references), so a new kind declares its references once, in its own model.
    """

    kind: str


def ref_kinds(annotation: Any) -> set[str]:
    """The kinds a type (nested models, lists, dicts, unions and ``Annotated`` included) can reference."""
    found: set[str] = set()
    seen: set[type[BaseModel]] = set()

    def walk(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp in seen:
                return
            seen.add(tp)
            for info in tp.model_fields.values():
                found.update(m.kind for m in info.metadata if isinstance(m, RefTo))
                walk(info.annotation)
            return
        found.update(m.kind for m in getattr(tp, "__metadata__", ()) if isinstance(m, RefTo))
        for arg in get_args(tp):
            walk(arg)

    walk(annotation)
    return found


class _Outputs(Protocol):
    def output(self, ref: ResourceKey, name: str = "arn") -> str: ...


# A `ValueRef` field → the output used when ``output`` is not given.
VALUE_REF_OUTPUTS: dict[str, str] = {
    "queue_ref": "url",
    "topic_ref": "arn",
    "bucket_ref": "name",
    "secret_ref": "arn",
    "log_group_ref": "name",
    "role_ref": "arn",
    "function_ref": "arn",
    "table_ref": "name",
}


class ValueRef(SpecModel):
    """A value taken from another resource of the stack: exactly one ``...Ref`` plus the output to use."""

    queue_ref: Annotated[str, RefTo("Queue")] | None = None
    topic_ref: Annotated[str, RefTo("Topic")] | None = None
    bucket_ref: Annotated[str, RefTo("Bucket")] | None = None
    secret_ref: Annotated[str, RefTo("Secret")] | None = None
    log_group_ref: Annotated[str, RefTo("LogGroup")] | None = None
    role_ref: Annotated[str, RefTo("Role")] | None = None
    function_ref: Annotated[str, RefTo("Function")] | None = None
    table_ref: Annotated[str, RefTo("Table")] | None = None
    output: str | None = None  # arn, url, name...; default per kind (see VALUE_REF_OUTPUTS)
    json_key: str | None = None  # secretRef only: one key of a JSON secret (ECS ``ARN:key::`` syntax)

    @model_validator(mode="after")
    def _exactly_one(self) -> ValueRef:
        if len(self.refs()) != 1:
            raise ValueError(f"set exactly one of {', '.join(to_camel(f) for f in VALUE_REF_OUTPUTS)}")
        if self.json_key is not None and self.secret_ref is None:
            raise ValueError("jsonKey only applies to secretRef")
        return self

    def refs(self) -> list[tuple[str, str]]:
        return [(f, getattr(self, f)) for f in VALUE_REF_OUTPUTS if getattr(self, f) is not None]

    def key(self) -> ResourceKey:
        field, name = self.refs()[0]
        (kind,) = ref_kinds(ValueRef.model_fields[field].annotation)
        return ResourceKey(kind=kind, name=name)

    def resolve(self, ctx: _Outputs) -> str:
        field, _ = self.refs()[0]
        value = ctx.output(self.key(), self.output or VALUE_REF_OUTPUTS[field])
        return f"{value}:{self.json_key}::" if self.json_key else value


def resolve_value(value: str | ValueRef, ctx: _Outputs) -> str:
    return value if isinstance(value, str) else value.resolve(ctx)


def ref_name(value: str | dict[str, Any]) -> str:
    """A reference written as ``queueRef: name`` or ``queueRef: {name: name}`` → the name."""
    if isinstance(value, dict):
        return str(value["name"])
    return value
