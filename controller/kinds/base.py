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
from collections.abc import Callable, Mapping
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


@dataclass(frozen=True)
class FieldRule:
    policy: FieldPolicy
    reason: str = ""


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
