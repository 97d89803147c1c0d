"""The stack lock for the one-shot writers (`apply`, `delete`), Terraform-style; the operator takes the same lease.

Not a command (leading underscore). ``--lock-timeout 0s`` (the default) refuses at once when another writer holds
the lock, naming it and since when; a longer timeout waits. ``--no-lock`` skips it (for a stack no one else
writes). While held, a thread renews the lease every ttl/3; every write is checked against it before it is sent
(`controller.calls.CallGate`), so an apply that lost its lock stops writing.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controller.commands._interrupt import InterruptHandler
    from controller.reconciler import Reconciler, ResourceResult

from controller.commands._duration import duration

APPLY_LOCK_TTL_S = 60.0


def add_lock_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lock-timeout", type=duration, default=0.0, metavar="DURATION",
                        help="wait this long for the stack lock held by another writer (default 0s: refuse)")
    parser.add_argument("--no-lock", dest="lock", action="store_false",
                        help="do not take the stack lock (only when nothing else writes this stack)")


@contextlib.contextmanager
def stack_lock(
    args: argparse.Namespace, stack: str, purpose: str, create_table: Callable[[], None] | None = None
) -> Iterator[Any]:
    """Hold the stack lock for the block; yields the `Lease` (or None with --no-lock). ``create_table`` creates
    a missing lock table from the stack's spec of it (`controller.lock_table`)."""
    if not getattr(args, "lock", True):
        yield None
        return
    from common.aws import client
    from controller.lease import Lease, default_holder

    lease = Lease(client("dynamodb"), stack, default_holder(purpose), ttl_s=APPLY_LOCK_TTL_S, purpose=purpose)
    if lease.ensure_table(create_table):
        print(f"created the lock table {lease.table}" + (" from its Table spec" if create_table else ""),
              file=sys.stderr, flush=True)
    lease.acquire(args.lock_timeout, say=lambda line: print(line, file=sys.stderr, flush=True))
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease.ttl_s / 3):
            with contextlib.suppress(Exception):  # a failed renew lets the lease expire: writes then stop
                if not lease.renew():
                    return

    thread = threading.Thread(target=renew, name="stack-lock", daemon=True)
    thread.start()
    try:
        yield lease
    finally:
        stop.set()
        thread.join(timeout=5)
        with contextlib.suppress(Exception):
            lease.release()


def run_guarded(
    args: argparse.Namespace, stack: str, purpose: str, ctx: Any,
    body: Callable[[Reconciler], list[ResourceResult]], *, manifests: Any = (),
) -> tuple[list[ResourceResult], InterruptHandler]:
    """Run ``body(reconciler)`` holding the stack lock, every call through a `CallGate` (lease check before each
    write, no call started after Ctrl-C) and Terraform-style interrupt handling; returns (results, interrupts)."""
    from controller.calls import CallGate
    from controller.commands._interrupt import InterruptHandler
    from controller.lock_table import create_from_spec
    from controller.reconciler import Reconciler

    with stack_lock(args, stack, purpose, create_from_spec(manifests, ctx)) as lease:
        gate = CallGate(check_write=lease.check if lease is not None else None)
        ctx.client = gate.client
        reconciler = Reconciler(ctx, gate=gate)
        gate.activate()
        try:
            with InterruptHandler(reconciler, gate) as interrupts:
                results = body(reconciler)
        finally:
            gate.deactivate()
    return results, interrupts
