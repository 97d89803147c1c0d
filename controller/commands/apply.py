"""`huntazectl apply -f PATH… [--dry-run] [--prune] [--allow-replace KIND/NAME]`: make AWS match the specs.

Prints a line per resource (created, updated, unchanged, replaced, pruned, refused...) with the fields that
changed, then a summary; exits 1 if any resource failed or was refused, 2 on a spec or usage error (or when the
stack lock is held by another writer, `controller.commands._lock`). A resource that fails with a temporary error
is requeued (reads and diffs again) until ``--requeue-timeout``. SIGINT/SIGTERM: the call in flight finishes,
what was done and not done is printed, exit 130/143 (`controller.commands._interrupt`).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from controller.commands._common import (
    add_stack_arguments,
    console,
    load_stack,
    make_context,
    parse_key,
    stack_name,
)
from controller.commands._duration import duration
from controller.commands._lock import add_lock_arguments, run_guarded


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("apply", help="create or update resources to match specs")
    add_stack_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    parser.add_argument("--prune", action="store_true", help="delete owned resources that are in no spec")
    parser.add_argument("--allow-replace", action="append", default=[], metavar="KIND/NAME",
                        help="allow deleting and recreating this resource for an immutable change")
    parser.add_argument("--concurrency", type=int, default=4, help="resources applied at once per tier")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    parser.add_argument("--requeue-timeout", type=duration, default=duration("5m"), metavar="DURATION",
                        help="keep retrying resources that failed with a temporary error this long (5m)")
    add_lock_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from controller.reconciler import ApplyOptions
    from controller.report import render_results, results_json

    allow = frozenset(parse_key(k) for k in args.allow_replace)
    stack = load_stack(args)
    ctx = make_context(args, dry_run=args.dry_run, stack=stack)
    options = ApplyOptions(dry_run=args.dry_run, prune=args.prune, allow_replace=allow,
                           concurrency=max(1, args.concurrency),
                           requeue_deadline_s=0.0 if args.dry_run else args.requeue_timeout,
                           progress=_progress(args))
    if args.dry_run:
        args.lock = False  # a plan writes nothing: no lock, like `terraform plan -lock=false`
    results, interrupts = run_guarded(args, stack_name(args), "apply", ctx, lambda r: r.apply(stack, options),
                                      manifests=stack.manifests)
    if args.output == "json":
        print(json.dumps(results_json(results), indent=2, default=str))
    else:
        render_results(results, console(), dry_run=args.dry_run)
    if interrupts.exit_code is not None:
        interrupts.report(results, "apply")
        return interrupts.exit_code
    return 1 if any(r.failed for r in results) else 0


def _progress(args: argparse.Namespace) -> Any:
    from controller.commands._progress import tier_progress

    return tier_progress(args.output)
