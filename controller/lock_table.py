"""The stack lock's DynamoDB table, created from the stack's own ``Table`` spec when the stack declares it.

Called by `controller.commands._lock` (apply, delete) and by the operator's loop before the lock is taken: the lock
must exist before the reconciler runs, as `terraform init` needs its lock table. When the stack declares that table
(manifests/controller-lease-table.yaml), the Table kind's own ``desired`` and ``create`` build it from that spec
(key schema, billing mode, time to live, point-in-time recovery, ownership tags), so the reconcile that follows
finds it exactly as declared. A bootstrap with its own idea of the table made every first apply report it
``updated [pointInTimeRecovery, tags]``. Without such a spec `Lease.ensure_table` bootstraps a minimal table
without stack ownership tags (so ``apply --prune`` never deletes the lock it is holding).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from controller.kinds import registry
from controller.kinds.base import Context, Prefetched
from controller.lease import LEASE_TABLE
from controller.model import Manifest

LOCK_TABLE_KIND = "Table"  # the lease is a DynamoDB row: its table is a spec of this kind


def lock_table_spec(manifests: Iterable[Manifest], table: str = LEASE_TABLE) -> Manifest | None:
    """The stack's ``Table`` manifest of the lock table (matched by its table name), if it has one."""
    for manifest in manifests:
        if manifest.kind == LOCK_TABLE_KIND:
            name = getattr(manifest.spec, "table_name", None) or manifest.metadata.name
            if name == table:
                return manifest
    return None


def create_from_spec(
    manifests: Iterable[Manifest], ctx: Context, table: str = LEASE_TABLE
) -> Callable[[], None] | None:
    """What `Lease.ensure_table` calls to create a missing lock table: the Table kind's ``create`` from the
    stack's spec of it, in a context of its own (nothing it reads or resolves leaks into the reconcile)."""
    manifest = lock_table_spec(manifests, table)
    if manifest is None:
        return None
    spec = manifest
    handler = registry.handler(spec.kind)
    own = replace(ctx, resolved={}, prefetched=Prefetched(), dry_run=False)

    def create() -> None:
        handler.create(spec, handler.desired(spec, own), own)

    return create
