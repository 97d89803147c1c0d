"""`huntazectl apply -f PATH… [--dry-run] [--prune] [--allow-replace KIND/NAME]`: make AWS match the specs.

Prints a line per resource (created, updated, unchanged, replaced, pruned, refused...) with the fields that
changed, then a summary; exits 1 if any resource failed or was refused, 2 on a spec or usage error.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from controller.commands._common import add_stack_arguments, console, load_stack, make_context, parse_key
from controller.reconciler import ApplyOptions, Reconciler
from controller.report import render_results, results_json


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("apply", help="create or update resources to match specs")
    add_stack_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    parser.add_argument("--prune", action="store_true", help="delete owned resources that are in no spec")
    parser.add_argument("--allow-replace", action="append", default=[], metavar="KIND/NAME",
                        help="allow deleting and recreating this resource for an immutable change")
    parser.add_argument("--concurrency", type=int, default=4, help="resources applied at once per tier")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    allow = frozenset(parse_key(k) for k in args.allow_replace)
    stack = load_stack(args)
    ctx = make_context(args, dry_run=args.dry_run, stack=stack)
    options = ApplyOptions(dry_run=args.dry_run, prune=args.prune, allow_replace=allow,
                           concurrency=max(1, args.concurrency))
    results = Reconciler(ctx).apply(stack, options)
    if args.output == "json":
        print(json.dumps(results_json(results), indent=2, default=str))
    else:
        render_results(results, console(), dry_run=args.dry_run)
    return 1 if any(r.failed for r in results) else 0
