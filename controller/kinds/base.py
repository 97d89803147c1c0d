"""The contract between the generic reconciler and one kind of AWS resource (ACK's resource manager, in Python).

Called by `controller.reconciler` only. A kind is one module in `controller.kinds` defining a `KindHandler`
subclass decorated with `@register`; the reconciler, the diff and the CLI never import boto3 or a kind module
directly, they go through `controller.kinds.registry`.

A handler works on *normalized* field dicts: `desired()` turns the spec into the same flat shape that `read()`
returns for the live resource (ints not strings, parsed JSON not JSON text, server defaults filled), so the
diff compares like with like and a no-op reconcile writes nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel

from controller.model import Manifest, ResourceKey


class FieldPolicy(StrEnum):
    MUTABLE = "mutable"  # update in place
    IMMUTABLE = "immutable"  # a change requires replacement (refused unless --allow-replace)
    IGNORED = "ignored"  # owned by another actor (e.g. desiredCount under autoscaling): never drift
    UNOBSERVABLE = "unobservable"  # the live API does not return it here: reported, never drift
    # Compared (as MUTABLE) when the live API returns it, reported as unobservable when it does not: for APIs
    # that answer a field only in some states (moto's DescribeServices after CreateService vs UpdateService).
    UNOBSERVABLE_WHEN_ABSENT = "unobservable_when_absent"


@dataclass(frozen=True)
class FieldRule:
    policy: FieldPolicy
    reason: str = ""


@dataclass(frozen=True)
class FieldClaim:
    """A field of another resource that this resource's AWS counterpart takes over (server-side-apply style).

    A ScalingPolicy claims its Service's ``desiredCount``: while that policy is in the stack, the field is
    IGNORED on the Service with ``reason``; without it, the Service's desiredCount is compared like any field.
    """

    target: ResourceKey
    path: str  # dotted field path in the target's normalized fields
    reason: str


@dataclass(frozen=True)
class LiveResource:
    """A resource as it is in AWS, normalized."""

    key: ResourceKey
    physical_id: str  # queue URL, ARN or name: what the kind needs to find it again
    fields: dict[str, Any]  # normalized, same keys as `desired()`
    outputs: dict[str, str] = field(default_factory=dict)  # "arn", "url", "name"...: what references resolve to
    tags: dict[str, str] = field(default_factory=dict)
    owned: bool = False  # carries this stack's ownership tag


@dataclass
class Context:
    """What a handler may use: clients, the stack identity, resolved references."""

    stack: str
    region: str
    account_id: str
    client: Callable[[str], Any]  # service name -> boto3 client (common.aws.client)
    variables: Mapping[str, str] = field(default_factory=dict)
    # Outputs of resources already reconciled in this run, by key; a reference resolves through it.
    resolved: dict[ResourceKey, dict[str, str]] = field(default_factory=dict)
    dry_run: bool = False

    def output(self, ref: ResourceKey, name: str = "arn") -> str:
        """The ``name`` output (arn, url...) of a referenced resource reconciled earlier in this run."""
        try:
            return self.resolved[ref][name]
        except KeyError:
            raise LookupError(
                f"{ref} has no {name!r} output yet: it must be applied before what references it"
            ) from None


class KindHandler(ABC):
    """One kind. Subclasses set `kind`, `spec_model`, `rules` and implement the verbs."""

    kind: ClassVar[str]
    spec_model: ClassVar[type[BaseModel]]
    # Policies for fields that are not plainly mutable; a field absent here is MUTABLE.
    rules: ClassVar[Mapping[str, FieldRule]] = {}
    # Kinds sharing a tier may be reconciled concurrently; the order between kinds comes from references.

    def claims(self, manifest: Manifest) -> list[FieldClaim]:
        """Fields of *other* resources that this one's AWS counterpart owns once it exists (default: none)."""
        return []

    def field_rules(self, manifest: Manifest, claims: Sequence[FieldClaim] = ()) -> Mapping[str, FieldRule]:
        """The rules for one manifest: the kind's static `rules`, plus IGNORED for every field that another
        resource of the stack claims (``claims`` are those targeting this manifest). Override to compute more."""
        claimed = {c.path: FieldRule(FieldPolicy.IGNORED, c.reason) for c in claims if c.target == manifest.key}
        return {**self.rules, **claimed}

    @abstractmethod
    def references(self, manifest: Manifest) -> list[ResourceKey]:
        """The resources this one needs first (DLQ before queue, role before function...)."""

    @abstractmethod
    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        """The spec as normalized fields, references resolved through `ctx.output`."""

    @abstractmethod
    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        """The live resource, normalized, or None if it does not exist."""

    @abstractmethod
    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        """Create it, tagged as owned by ``ctx.stack``; wait until it is usable."""

    @abstractmethod
    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        """Change the ``changed`` fields in place (never called for immutable fields)."""

    @abstractmethod
    def delete(self, live: LiveResource, ctx: Context) -> None:
        """Delete it (the reconciler has already checked ownership and the retain policy)."""

    @abstractmethod
    def list_owned(self, ctx: Context) -> list[LiveResource]:
        """Every live resource of this kind tagged as owned by ``ctx.stack`` (for prune and drift reports)."""

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        """What replacing `live` would lose, shown when a replacement is refused."""
        return "the live resource and everything it holds"
