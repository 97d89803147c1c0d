"""Field rules per manifest, computed over the whole stack: a kind's static rules plus other resources' claims.

Called by `controller.reconciler` (once per apply, diff or drift) and by the ``describe`` command. Static rules
are wrong on real AWS for fields another actor owns only in some stacks: a Service's ``desiredCount`` belongs to
Application Auto Scaling only while a ScalingPolicy targets that service. So the kind that creates the other
actor says so (`KindHandler.claims`: the ScalingPolicy claims ``Service/<name>.desiredCount``), and each
manifest's rules come from `KindHandler.field_rules` given the claims that target it. Nothing here imports a
kind or talks to AWS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from controller.kinds.base import FieldClaim, FieldRule, KindHandler
from controller.model import Manifest, ResourceKey

HandlerFor = Callable[[str], KindHandler]


def stack_claims(manifests: Iterable[Manifest], handler_for: HandlerFor) -> dict[ResourceKey, list[FieldClaim]]:
    """Every claim made by a manifest of the stack, grouped by the resource it targets."""
    claims: dict[ResourceKey, list[FieldClaim]] = {}
    for manifest in manifests:
        for claim in handler_for(manifest.kind).claims(manifest):
            claims.setdefault(claim.target, []).append(claim)
    return claims


def rules_by_key(manifests: Iterable[Manifest], handler_for: HandlerFor) -> dict[ResourceKey, Mapping[str, FieldRule]]:
    """The field rules of every manifest of the stack, claims by the others included."""
    listed = list(manifests)
    claims = stack_claims(listed, handler_for)
    return {m.key: handler_for(m.kind).field_rules(m, claims.get(m.key, [])) for m in listed}
