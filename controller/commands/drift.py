"""`huntazectl drift -f PATH… [-v] --format text|json|markdown`: the on-call drift report.

For every resource in the specs: the drifted fields as ``desired X, live Y`` with their verdict (with ``-v``,
also ignored and unobservable fields with the reason); plus resources owned by this stack in AWS that are in
no spec. Exit 0: no drift; 1: drift; 2: error. The same counts give the summary line and the exit code, as
in ``diff``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from controller.commands._common import add_stack_arguments, load_stack, make_context


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("drift", help="drift detection report for on-call")
    add_stack_arguments(parser)
    parser.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also list fields that are never drift (ignored, unobservable) and why")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from controller.reconciler import Reconciler
    from controller.report import drift_data, drift_exit_code, drift_markdown, drift_text

    stack = load_stack(args)
    reconciler = Reconciler(make_context(args, dry_run=True, stack=stack))
    results = reconciler.plan(stack)
    orphans = reconciler.orphans(stack)
    data = drift_data(results, orphans, reconciler.listing_errors, verbose=args.verbose)
    if args.format == "json":
        print(json.dumps(data, indent=2, default=str))
    elif args.format == "markdown":
        print(drift_markdown(data))
    else:
        print(drift_text(data))
    return drift_exit_code(data)
