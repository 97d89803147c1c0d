"""`huntazectl get KIND [NAME] [-o wide|yaml|json] [-f PATH]`: list live resources of a kind.

Without ``-f`` it lists what this stack owns (found by the ownership tag); with ``-f`` it reads the resources
named in the specs, owned or not. Secrets show metadata only: their values are never read; credentials in
URLs are masked.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from controller.commands._common import (
    add_stack_arguments,
    console,
    jsonable,
    load_stack,
    make_context,
    resolve_kind,
)
from controller.redact import redact

if TYPE_CHECKING:  # imported where used: registering the command must stay cheap (huntazectl --help)
    from rich.table import Table

    from controller.kinds.base import Context, LiveResource
    from controller.specs import LoadedStack


def register(sub: Any) -> None:
    from controller.kinds import registry  # only when `get` is the command being run (huntazectl --help stays cheap)

    parser: argparse.ArgumentParser = sub.add_parser("get", help="list live resources of a kind")
    parser.add_argument("kind", help=f"{', '.join(registry.kind_names())} (or 'all')")
    parser.add_argument("name", nargs="?", help="only this resource")
    add_stack_arguments(parser, files_required=False)
    parser.add_argument("-o", "--output", choices=["table", "wide", "yaml", "json"], default="table")
    parser.set_defaults(handler=run)


def live_resources(args: argparse.Namespace, kinds: list[str]) -> tuple[Context, list[LiveResource]]:
    """Read live resources: from the specs given with -f, else everything this stack owns."""
    from controller.kinds import registry
    from controller.reconciler import Reconciler
    from controller.retrying import call

    stack: LoadedStack | None = load_stack(args) if args.paths else None
    ctx = make_context(args, dry_run=True, stack=stack)
    found: list[LiveResource] = []
    if stack is None:
        for kind in kinds:
            found.extend(call(registry.handler(kind).list_owned, ctx))
        return ctx, found
    Reconciler(ctx).plan(stack)  # resolves references so that reads of dependents work
    for manifest in stack.manifests:
        if manifest.kind in kinds:
            live = call(registry.handler(manifest.kind).read, manifest, ctx)
            if live is not None:
                found.append(live)
    return ctx, found


def as_dict(live: LiveResource) -> dict[str, Any]:
    body: dict[str, Any] = redact(jsonable({"resource": str(live.key), "physicalId": live.physical_id,
                                     "owned": live.owned, "outputs": live.outputs, "tags": live.tags,
                                     "fields": live.fields}))
    return body


def run(args: argparse.Namespace) -> int:
    import yaml

    from controller.kinds import registry

    kinds = registry.known_kinds() if args.kind.lower() == "all" else [resolve_kind(args.kind)]
    _, found = live_resources(args, kinds)
    if args.name:
        found = [r for r in found if args.name in (r.key.name, r.outputs.get("name"), r.physical_id)]
    if args.output == "json":
        print(json.dumps([as_dict(r) for r in found], indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump([as_dict(r) for r in found], sort_keys=False), end="")
    else:
        console().print(_table(found, wide=args.output == "wide"))
    return 0 if found or not args.name else 1


def _table(found: list[LiveResource], *, wide: bool) -> Table:
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("RESOURCE", "PHYSICAL ID", "OWNED", *(["FIELDS"] if wide else [])):
        table.add_column(column, overflow="fold")
    for live in found:
        row = [str(live.key), live.physical_id, "yes" if live.owned else "no"]
        if wide:
            row.append(", ".join(f"{k}={json.dumps(redact(v), default=str)}" for k, v in live.fields.items()
                                 if k != "tags"))
        table.add_row(*row)
    if not found:
        table.add_row("(none)", "", "")
    return table
