"""`huntazectl delete -f PATH [--dry-run]`: delete the stack's resources, dependents first.

Only resources owned by this stack are deleted; ``huntaze.io/deletion-policy: retain`` keeps one.
Exit 1 if anything failed.
"""

from __future__ import annotations

import argparse
from typing import Any

from controller.commands._common import add_stack_arguments, console, load_stack, make_context, stack_name
from controller.commands._lock import add_lock_arguments, run_guarded


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("delete", help="delete the resources defined in specs")
    add_stack_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="show what would be deleted")
    add_lock_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from controller.reconciler import Action
    from controller.report import render_results

    stack = load_stack(args)
    ctx = make_context(args, dry_run=args.dry_run, stack=stack)
    if args.dry_run:
        args.lock = False
    results, interrupts = run_guarded(args, stack_name(args), "delete", ctx,
                                      lambda r: r.delete(stack, args.dry_run),
                                      manifests=stack.manifests)
    render_results(results, console(), dry_run=args.dry_run)
    if interrupts.exit_code is not None:
        interrupts.report(results, "delete")
        return interrupts.exit_code
    return 1 if any(r.failed and r.action is not Action.REFUSED for r in results) else 0
