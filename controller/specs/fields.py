"""Building blocks for the ``spec`` models of the kinds: a frozen camelCase base model, range checks, references.

Used by every module in `controller.kinds` (``spec_model``). YAML keys are camelCase (``visibilityTimeout``)
while Python fields are snake_case; pydantic reports errors under the YAML name, so
`controller.specs.validation` can point at the key's line. Range checks say ``must be 0..43200`` in words a
person reads in one glance, instead of two separate "greater/less than" messages.

Field types more than one kind uses live here, not in a kind module, so that no kind imports another:
`RefTo` marks a reference field (the registry derives the delete order from these marks), `ValueRef` is a
value taken from another resource (Function environment, TaskDefinition environment and secrets) of any kind
that declares a `value_output`, and the AWS naming rules (`aws_name`, `ARN`) are written once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

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


# What `ref_kinds` reports for a `ValueRef`: it may name any kind that declares a `value_output`, so the
# registry (`referenced_kinds`) expands it to those kinds; it is never a kind name itself.
ANY_VALUE_SOURCE = "<any kind with a value_output>"


def ref_kinds(annotation: Any) -> set[str]:
    """The kinds a type (nested models, lists, dicts, unions and ``Annotated`` included) can reference;
    `ANY_VALUE_SOURCE` where it holds a `ValueRef`."""
    found: set[str] = set()
    seen: set[type[BaseModel]] = set()

    def walk(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp in seen:
                return
            seen.add(tp)
            if issubclass(tp, ValueRef):
                found.add(ANY_VALUE_SOURCE)
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


def _value_sources() -> dict[str, str]:
    """``queueRef`` → ``Queue``... for every registered kind declaring a `value_output` (`controller.kinds.base`)."""
    from controller.kinds import registry  # specs are validated once every kind is registered

    return {kind[0].lower() + kind[1:] + "Ref": kind for kind in registry.value_sources()}


def _ref_error(key: str, value: Any, message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("value_ref", message), loc=(key,), input=value)


class ValueRef(SpecModel):
    """A value taken from another resource of the stack: ``{queueRef: NAME, output: url}``.

    Exactly one ``<kindCamel>Ref`` key names the resource. Any registered kind that declares
    `KindHandler.value_output` (the ``output`` used when none is given) may be named, so a new kind others take
    values from declares it in its own module. The key is kept as it was written, as the model's one extra
    field: dumps (the operator's spec fingerprint) include it.
    """

    model_config = ConfigDict(extra="allow")  # only the `<kindCamel>Ref` key, checked by `_known_keys`

    output: str | None = None  # arn, url, name...; default: the kind's `value_output`
    json_key: str | None = None  # secretRef only: one key of a JSON secret (ECS ``ARN:key::`` syntax)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        """Every key is a field or the ``...Ref`` of a kind with a value; others are refused at their own line."""
        if not isinstance(data, dict):
            return data
        sources = _value_sources()
        own = {name for field, info in cls.model_fields.items() for name in (field, info.alias)}
        choices = ", ".join(sources)
        errors: list[InitErrorDetails] = []
        refs: dict[str, Any] = {}
        for key, value in data.items():
            if key in own:
                continue
            ref = to_camel(key) if isinstance(key, str) and key.endswith("_ref") else key
            if ref in sources:
                if not isinstance(value, str):
                    errors.append(_ref_error(key, value, f"must be the name of a {sources[ref]}"))
                elif ref in refs:
                    errors.append(_ref_error(key, value, f"given twice (as {ref} too); keep one"))
                refs[ref] = value
            elif isinstance(key, str) and key.endswith("Ref"):
                errors.append(_ref_error(key, value, f"no kind gives values through {key} (check the spelling); "
                                                     f"valueFrom takes one of {choices}"))
            else:
                errors.append(InitErrorDetails(type="extra_forbidden", loc=(key,), input=value))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return {**{k: v for k, v in data.items() if k in own}, **refs}

    @model_validator(mode="after")
    def _exactly_one(self) -> ValueRef:
        if len(self.model_extra or {}) != 1:
            raise ValueError(f"set exactly one of {', '.join(_value_sources())}")
        if self.json_key is not None and self.key().kind != "Secret":
            raise ValueError("jsonKey only applies to secretRef")
        return self

    def key(self) -> ResourceKey:
        """The resource named (``queueRef: q`` → ``Queue/q``)."""
        ((ref, name),) = (self.model_extra or {}).items()
        return ResourceKey(kind=ref[0].upper() + ref[1:].removesuffix("Ref"), name=name)

    def resolve(self, ctx: _Outputs) -> str:
        from controller.kinds import registry

        key = self.key()
        value = ctx.output(key, self.output or registry.value_sources()[key.kind])
        return f"{value}:{self.json_key}::" if self.json_key else value


def resolve_value(value: str | ValueRef, ctx: _Outputs) -> str:
    return value if isinstance(value, str) else value.resolve(ctx)


def ref_name(value: str | dict[str, Any]) -> str:
    """A reference written as ``queueRef: name`` or ``queueRef: {name: name}`` → the name."""
    if isinstance(value, dict):
        return str(value["name"])
    return value
