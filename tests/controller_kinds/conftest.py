"""Fixtures for the per-kind tests: a `Kit` bound to a clean moto account.

The kit builds manifests as the spec loader would; every manifest it builds joins its "stack", so field claims
between resources (a ScalingPolicy owning its Service's desiredCount) apply as in a real run. `Kit.reconcile`
and `Kit.delta` drive the real `controller.reconciler.Reconciler` (apply and plan) on a one-tier stack holding
that manifest (the kit's other manifests ride along for their claims only), and it counts AWS write calls with
a botocore ``before-call`` hook. Tests get it through
the `kit` fixture (pytest runs with --import-mode=importlib, so helpers are handed out by fixtures rather than
imported).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from common import aws
from controller.claims import rules_by_key
from controller.diff import Delta
from controller.kinds.base import Context, FieldRule, LiveResource, Prefetched
from controller.kinds.registry import handler
from controller.model import Manifest, Metadata, ResourceKey, Source
from controller.reconciler import ApplyOptions, Reconciler
from controller.specs import LoadedStack

STACK = "huntaze-test"
ACCOUNT = "123456789012"
READ_PREFIXES = ("Describe", "List", "Get", "Head")


@dataclass
class WriteCounter:
    """AWS calls that are not Describe*/List*/Get*/Head*, by operation name, in call order."""

    calls: list[str] = field(default_factory=list)

    def __call__(self, model: Any, **_: Any) -> None:
        if not model.name.startswith(READ_PREFIXES):
            self.calls.append(model.name)

    def reset(self) -> None:
        self.calls.clear()


@dataclass
class Kit:
    ctx: Context
    stack: dict[ResourceKey, Manifest] = field(default_factory=dict)
    _hooked: list[tuple[Any, WriteCounter]] = field(default_factory=list)

    def manifest(self, kind: str, name: str, spec: dict[str, Any]) -> Manifest:
        model = handler(kind).spec_model
        made = Manifest(
            kind=kind,
            metadata=Metadata(name=name),
            spec=model.model_validate(spec),
            source=Source(file="test.yaml", line=1),
        )
        self.stack[made.key] = made
        return made

    def rules(self, manifest: Manifest) -> Mapping[str, FieldRule]:
        """The manifest's field rules in the kit's stack (claims by the other manifests included)."""
        return rules_by_key([*self.stack.values(), manifest], handler)[manifest.key]

    def stack_of(self, manifest: Manifest) -> LoadedStack:
        """``manifest`` alone in one tier; the kit's other manifests only contribute their field claims."""
        others = [m for m in self.stack.values() if m.key != manifest.key]
        return LoadedStack(manifests=[*others, manifest], tiers=[[manifest]], dependencies={}, documents={},
                           env="local", variables={})

    def delta(self, manifest: Manifest) -> Delta:
        """What `diff` would show for ``manifest`` (the reconciler's plan; nothing is written)."""
        scratch = replace(self.ctx, resolved=dict(self.ctx.resolved), prefetched=Prefetched())
        [result] = Reconciler(scratch).plan(self.stack_of(manifest))
        assert result.delta is not None, f"{manifest.key}: {result.action}: {result.message}"
        return result.delta

    def reconcile(self, manifest: Manifest) -> LiveResource:
        """Apply ``manifest`` with the real reconciler (create, or update the changed fields); its live state."""
        [result] = Reconciler(self.ctx).apply(self.stack_of(manifest), ApplyOptions(concurrency=1))
        assert not result.failed and not result.message, f"{manifest.key}: {result.action}: {result.message}"
        live = handler(manifest.kind).read(manifest, self.ctx)
        assert live is not None, f"{manifest.key} not found after the reconciler applied it"
        return live

    def resolve(self, kind: str, resource: str, **outputs: str) -> None:
        """Pretend a referenced resource was reconciled earlier in the run."""
        self.ctx.resolved[ResourceKey(kind=kind, name=resource)] = dict(outputs)

    def writes(self, *services: str) -> WriteCounter:
        counter = WriteCounter()
        for service in services:
            client = aws.client(service)
            client.meta.events.register("before-call.*.*", counter)
            self._hooked.append((client, counter))
        return counter

    def close(self) -> None:
        for client, counter in self._hooked:
            client.meta.events.unregister("before-call.*.*", counter)


@pytest.fixture
def kit(aws: str) -> Iterator[Kit]:
    ctx = Context(stack=STACK, region="us-east-1", account_id=ACCOUNT, client=_client)
    made = Kit(ctx)
    yield made
    made.close()


def _client(service: str) -> Any:
    return aws.client(service)
