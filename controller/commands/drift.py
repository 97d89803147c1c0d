"""`huntazectl drift -f PATH… --format text|json|markdown`: the on-call drift report.

For every resource in the specs: the drifted fields with desired, live and verdict (ignored and unobservable
fields are listed with their reason); plus resources owned by this stack in AWS that are in no spec.
Exit 0: no drift; 1: drift; 2: error.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from controller.commands._common import add_stack_arguments, load_stack, make_context
from controller.reconciler import Reconciler
from controller.report import drift_data, drift_has_drift, drift_markdown, drift_text


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("drift", help="drift detection report for on-call")
    add_stack_arguments(parser)
    parser.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    stack = load_stack(args)
    reconciler = Reconciler(make_context(args, dry_run=True, stack=stack))
    results = reconciler.plan(stack)
    orphans = reconciler.orphans(stack)
    data = drift_data(results, orphans, reconciler.listing_errors)
    if args.format == "json":
        print(json.dumps(data, indent=2, default=str))
    elif args.format == "markdown":
        print(drift_markdown(data))
    else:
        print(drift_text(data))
    if any(r.failed for r in results) or reconciler.listing_errors:
        return 2
    return 1 if drift_has_drift(data) else 0
