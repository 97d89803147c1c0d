"""`huntazectl diff -f PATH…`: a per-field diff of specs against AWS, writing nothing.

Exit 0: no drift; 1: drift (a field differs, a resource is missing, or needs replacement); 2: error.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from controller.commands._common import add_stack_arguments, console, load_stack, make_context
from controller.reconciler import Action, Reconciler
from controller.report import render_diff, results_json

EXIT_DRIFT = 1
EXIT_ERROR = 2


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("diff", help="show differences between specs and AWS")
    add_stack_arguments(parser)
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    stack = load_stack(args)
    results = Reconciler(make_context(args, dry_run=True, stack=stack)).plan(stack)
    if args.output == "json":
        print(json.dumps(results_json(results), indent=2, default=str))
    else:
        render_diff(results, console())
    if any(r.failed for r in results):
        return EXIT_ERROR
    drift = any(r.action is not Action.UNCHANGED for r in results)
    return EXIT_DRIFT if drift else 0
