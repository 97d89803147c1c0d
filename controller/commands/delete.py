"""`huntazectl delete -f PATH [--dry-run]`: delete the stack's resources, dependents first.

Only resources owned by this stack are deleted; ``huntaze.io/deletion-policy: retain`` keeps one.
Exit 1 if anything failed.
"""

from __future__ import annotations

import argparse
from typing import Any

from controller.commands._common import add_stack_arguments, console, load_stack, make_context
from controller.reconciler import Action, Reconciler
from controller.report import render_results


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("delete", help="delete the resources defined in specs")
    add_stack_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="show what would be deleted")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    stack = load_stack(args)
    results = Reconciler(make_context(args, dry_run=args.dry_run, stack=stack)).delete(stack, args.dry_run)
    render_results(results, console(), dry_run=args.dry_run)
    return 1 if any(r.failed and r.action is not Action.REFUSED for r in results) else 0
