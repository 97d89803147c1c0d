"""The contract between the generic reconciler and one kind of AWS resource (ACK's resource manager, in Python).

Called by `controller.reconciler` only. A kind is one module in `controller.kinds` defining a `KindHandler`
subclass decorated with `@register`; the reconciler, the diff and the CLI never import boto3 or a kind module
directly, they go through `controller.kinds.registry`.

A handler works on *normalized* field dicts: `desired()` turns the spec into the same flat shape that `read()`
returns for the live resource (ints not strings, parsed JSON not JSON text, server defaults filled), so the
diff compares like with like and a no-op reconcile writes nothing.
"""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from controller.model import Manifest, ResourceKey
from controller.retrying import error_code

S = TypeVar("S", bound=BaseModel)
T = TypeVar("T")


class FieldPolicy(StrEnum):
    MUTABLE = "mutable"  # update in place
    IMMUTABLE = "immutable"  # a change requires replacement (refused unless --allow-replace)
    IGNORED = "ignored"  # owned by another actor (e.g. desiredCount under autoscaling): never drift
    UNOBSERVABLE = "unobservable"  # the live API does not return it here: reported, never drift
    # Compared (as MUTABLE) when the live API returns it, reported as unobservable when it does not: for APIs
    # that answer a field only in some states (moto's DescribeServices after CreateService vs UpdateService).
    UNOBSERVABLE_WHEN_ABSENT = "unobservable_when_absent"
    # A deployment engine (ECS's circuit breaker or alarm rollback, a traffic shift rolled back) or on-call
    # (`huntazectl rollout undo`) set it back from the spec's release: held, never drift, until the spec changes.
    HELD = "held"


@dataclass(frozen=True)
class FieldRule:
    policy: FieldPolicy
    reason: str = ""
    # IGNORED only: the range the other actor may set (inclusive); a live value outside it is drift.
    bounds: tuple[float, float] | None = None


@dataclass(frozen=True)
class FieldClaim:
    """A field of another resource that this resource's AWS counterpart takes over (server-side-apply style).

    A ScalingPolicy claims its Service's ``desiredCount``: while that policy is in the stack, the field is
    IGNORED on the Service with ``reason``; without it, the Service's desiredCount is compared like any field.
    """

    target: ResourceKey
    path: str  # dotted field path in the target's normalized fields
    reason: str
    bounds: tuple[float, float] | None = None  # the values the claimer may set; outside them is drift


@dataclass(frozen=True)
class Hold:
    """The live resource was rolled back from the release the spec still asks for: do not release it again.

    A kind's `read` returns one when its deployment engine (or on-call, with `huntazectl rollout undo`) took
    ``fields`` back from a release. It holds while every field in ``while_desired`` has that value in the
    desired state (the rolled-back release: a task definition ARN, a code hash and configuration); a spec
    that asks for anything else releases it as usual. The reconciler gives ``fields`` the policy HELD.
    """

    fields: tuple[str, ...]  # the live fields the rollback set back (compared, never written while held)
    while_desired: Mapping[str, Any]  # desired values that identify the rolled-back release
    rolled_back: str  # the release that was rolled back ("huntaze-onlyfans-scraper:7", "version 4")
    reason: str  # who rolled it back and why (the engine's reason, or "rollout undo")
    next_step: str  # what a person does next (fix the spec and apply, or `huntazectl rollout ...`)

    def applies_to(self, desired: Mapping[str, Any]) -> bool:
        return all(desired.get(name) == value for name, value in self.while_desired.items())

    def describe(self) -> str:
        return f"held: rolled back from {self.rolled_back} ({self.reason}); {self.next_step}"


@dataclass(frozen=True)
class LiveResource:
    """A resource as it is in AWS, normalized."""

    key: ResourceKey
    physical_id: str  # queue URL, ARN or name: what the kind needs to find it again
    fields: dict[str, Any]  # normalized, same keys as `desired()`
    outputs: dict[str, str] = field(default_factory=dict)  # "arn", "url", "name"...: what references resolve to
    tags: dict[str, str] = field(default_factory=dict)
    owned: bool = False  # carries this stack's ownership tag
    hold: Hold | None = None  # rolled back from a release the spec may still ask for (see `Hold`)


class Prefetched:
    """Answers of batch reads made before resources are reconciled one by one, each handed out once.

    `controller.kinds.prefetch` fills it (one GetResources for the tags of most kinds, then per dependency tier
    each kind's `KindHandler.prefetch`: one DescribeAlarms for all alarms, DescribeServices for ten services...).
    A handler's `read` takes its entry instead of calling AWS. An entry is removed when taken, so the re-read
    after a write always asks AWS again. Thread-safe: a tier is reconciled by a thread pool.
    """

    enabled = True  # False: no batch read is made, every kind reads one by one (benchmarks compare both)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], Any] = {}
        self._memos: dict[tuple[str, str], Any] = {}

    def put(self, namespace: str, key: str, value: Any) -> None:
        """Remember ``value`` for ``key``; None means the batch read proved it does not exist."""
        with self._lock:
            self._entries[(namespace, key)] = value

    def take(self, namespace: str, key: str) -> tuple[bool, Any]:
        """``(True, value)`` if prefetched (``value`` None when proven absent), else ``(False, None)``: the
        caller reads it itself."""
        with self._lock:
            if (namespace, key) in self._entries:
                return True, self._entries.pop((namespace, key))
            return False, None

    def memo(self, namespace: str, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per pass for facts no write of ours changes (the default VPC's subnets), shared
        by every resource of the pass; unlike `take`, the answer is kept until `clear`."""
        with self._lock:
            if (namespace, key) in self._memos:
                found: T = self._memos[(namespace, key)]
                return found
        value = compute()
        with self._lock:
            self._memos[(namespace, key)] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._memos.clear()


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
    # Live state read in batches before the resources are reconciled one by one (see `Prefetched`).
    prefetched: Prefetched = field(default_factory=Prefetched)

    def output(self, ref: ResourceKey, name: str = "arn") -> str:
        """The ``name`` output (arn, url...) of a referenced resource reconciled earlier in this run."""
        try:
            return self.resolved[ref][name]
        except KeyError:
            raise LookupError(
                f"{ref} has no {name!r} output yet: it must be applied before what references it"
            ) from None


class KindHandler(ABC):
    """One kind, as the reconciler sees it. Kind modules subclass `Kind` (its typed form), set `kind`,
    `spec_model`, `rules`, `not_found_codes` (and `value_output` if others take values from it) and implement
    the verbs."""

    kind: ClassVar[str]
    spec_model: type[BaseModel]
    # Policies for fields that are not plainly mutable; a field absent here is MUTABLE.
    rules: ClassVar[Mapping[str, FieldRule]] = {}
    # AWS error codes meaning "this resource does not exist" for this kind's reads and deletes.
    not_found_codes: ClassVar[frozenset[str]] = frozenset()
    # The output (arn, url, name...) another resource takes with ``valueFrom: {<kindCamel>Ref: NAME}`` when it
    # gives no ``output``; None: resources of this kind give no value (`controller.specs.fields.ValueRef`).
    value_output: ClassVar[str | None] = None
    # Kinds sharing a tier may be reconciled concurrently; the order between kinds comes from references.

    def is_not_found(self, exc: BaseException) -> bool:
        """True if ``exc`` is AWS saying the resource does not exist (one of `not_found_codes`)."""
        return error_code(exc) in self.not_found_codes

    @contextlib.contextmanager
    def absent_ok(self) -> Iterator[None]:
        """Swallow "does not exist" (a delete of something already gone); raise every other error."""
        try:
            yield
        except Exception as exc:
            if not self.is_not_found(exc):
                raise

    def read_or_none(self, fn: Callable[..., T], /, **kwargs: Any) -> T | None:
        """``fn(**kwargs)``, or None when AWS answers that the resource does not exist."""
        try:
            return fn(**kwargs)
        except Exception as exc:
            if self.is_not_found(exc):
                return None
            raise

    def prefetch(self, manifests: Sequence[Manifest], ctx: Context) -> None:  # noqa: B027 (optional hook)
        """Read the live state of ``manifests`` (one dependency tier) in batches into ``ctx.prefetched``.

        Called by `controller.kinds.prefetch` before the tier's `read` calls; references of the tier are
        resolved by then. Default: nothing. A failing batch read is ignored: `read` then asks AWS itself.
        """

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        """AWS rules the spec model alone cannot check, offline: ``(path, message)`` pairs.

        For rules that need the manifest's name (an AWS name defaulting to ``metadata.name``) or other
        resources of the stack (a standard queue's dead-letter queue must be standard). Called by the spec
        loader through `controller.kinds.registry.check_stack`; default: nothing.
        """
        return []

    def claims(self, manifest: Manifest) -> list[FieldClaim]:
        """Fields of *other* resources that this one's AWS counterpart owns once it exists (default: none)."""
        return []

    def field_rules(self, manifest: Manifest, claims: Sequence[FieldClaim] = ()) -> Mapping[str, FieldRule]:
        """The rules for one manifest: the kind's static `rules`, plus IGNORED for every field that another
        resource of the stack claims (``claims`` are those targeting this manifest). Override to compute more."""
        claimed = {c.path: FieldRule(FieldPolicy.IGNORED, c.reason, c.bounds) for c in claims
                   if c.target == manifest.key}
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


class Kind(KindHandler, Generic[S]):
    """A kind generic over its spec model: ``class QueueHandler(Kind[QueueSpec])`` gets `spec` typed as
    `QueueSpec`, so mypy checks every spec access without a cast."""

    spec_model: type[S]

    def spec(self, manifest: Manifest) -> S:
        """The manifest's spec, as this kind's model (the loader validated it with `spec_model`)."""
        return spec_of(manifest, self.spec_model)


def spec_of(manifest: Manifest, model: type[S]) -> S:
    """``manifest.spec`` as ``model``, checked: for module-level helpers of a kind (``queue_name(manifest)``)."""
    spec = manifest.spec
    if not isinstance(spec, model):
        raise TypeError(f"{manifest.key}: spec is {type(spec).__name__}, not {model.__name__}")
    return spec


def check_name(
    manifest: Manifest, given: str | None, effective: str, rule: Callable[[str], str], field: str
) -> list[tuple[str, str]]:
    """``rule`` applied to an AWS name that defaults to ``metadata.name``: the spec model already checked a name
    written in ``spec.<field>``, so only the default (or what the kind derives from it) is checked here."""
    if given is not None and given == effective:
        return []
    try:
        rule(effective)
    except ValueError as exc:
        path = f"spec.{field}" if given is not None else "metadata.name"
        return [(path, f"{exc} (the {field} AWS gets is {effective[:80]!r})")]
    return []
