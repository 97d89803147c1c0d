"""`huntazectl diff -f PATH… [-v] [-o text|json]`: a per-field diff of specs against AWS, writing nothing.

Shows what `apply` would do (and nothing it would not): resources to create, update or replace with each
drifted field as ``desired X, live Y``, plus resources this stack owns that are in no spec (``apply --prune``
deletes them). ``-v`` also lists fields that are never drift (ignored, unobservable) with the reason.
Exit 0: no drift; 1: drift; 2: error (the plan is incomplete). The summary line always says which.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from controller.commands._common import add_stack_arguments, console, load_stack, make_context


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("diff", help="show differences between specs and AWS")
    add_stack_arguments(parser)
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show fields that are never drift (ignored, unobservable) and why")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from controller.reconciler import Reconciler
    from controller.redact import mask_text
    from controller.report import plan_outcome, render_diff, results_json

    stack = load_stack(args)
    reconciler = Reconciler(make_context(args, dry_run=True, stack=stack))
    results = reconciler.plan(stack)
    orphans = reconciler.orphans(stack)
    if args.output == "json":
        text, code = plan_outcome(results, orphans, reconciler.listing_errors)
        body = {"summary": {"text": text, "exitCode": code},
                "resources": results_json(results, verbose=args.verbose),
                "ownedNotInSpec": [{"resource": str(o.key), "physicalId": mask_text(o.physical_id)} for o in orphans],
                "listingErrors": {k: mask_text(v) for k, v in reconciler.listing_errors.items()}}
        print(json.dumps(body, indent=2, default=str))
        return code
    return render_diff(results, console(), verbose=args.verbose, orphans=orphans,
                       listing_errors=reconciler.listing_errors)
