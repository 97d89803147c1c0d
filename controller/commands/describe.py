"""`huntazectl describe KIND/NAME [-f PATH]`: one live resource in full, and its diff when specs are given.

Shows outputs (ARN, URL), ownership, tags and every normalized field; with ``-f`` also each field's verdict
against the spec. Secret values are never shown (the Secret kind does not read them), and credentials inside
URLs are masked (`controller.redact`).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from controller.commands._common import add_stack_arguments, console, jsonable, load_stack, make_context, parse_key

if TYPE_CHECKING:  # imported in run(): registering the command must stay cheap (huntazectl --help)
    from controller.kinds.base import LiveResource


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("describe", help="show one live resource in detail")
    parser.add_argument("resource", metavar="KIND/NAME")
    add_stack_arguments(parser, files_required=False)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.text import Text

    from controller.diff import compute_delta
    from controller.errors import HuntazeCtlError
    from controller.kinds import registry
    from controller.reconciler import Reconciler
    from controller.report import render_diff
    from controller.retrying import call

    key = parse_key(args.resource)
    handler = registry.handler(key.kind)
    out = console()
    if args.paths:
        stack = load_stack(args)
        manifest = stack.get(key)
        if manifest is None:
            raise HuntazeCtlError(f"{key} is not in the specs given with -f")
        ctx = make_context(args, dry_run=True, stack=stack)
        reconciler = Reconciler(ctx)
        results = reconciler.plan(stack)
        live = call(handler.read, manifest, ctx)
        _print_live(live, key, out)
        result = next(r for r in results if r.key == key)
        if live is not None:
            rules = reconciler.rules_for(manifest)
            result.delta = compute_delta(key, handler.desired(manifest, ctx), live.fields, rules)
        out.print(Text("\nDiff against the spec:", style="bold"))
        render_diff([result], out, verbose=True)
        return 0 if live is not None else 1
    ctx = make_context(args, dry_run=True)
    live = next((r for r in call(handler.list_owned, ctx) if r.key == key), None)
    _print_live(live, key, out)
    return 0 if live is not None else 1


def _print_live(live: LiveResource | None, key: Any, out: Any) -> None:
    import yaml
    from rich.text import Text

    from controller.redact import redact

    if live is None:
        out.print(Text(f"{key}: not found in AWS (or not owned by this stack; pass -f to read it by spec)"))
        return
    body = {"Resource": str(live.key), "Physical ID": live.physical_id, "Owned by this stack": live.owned,
            "Outputs": live.outputs, "Tags": live.tags, "Fields": live.fields}
    out.print(Text(yaml.safe_dump(redact(jsonable(body)), sort_keys=False).rstrip()))
