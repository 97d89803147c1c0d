"""`huntazectl history [--since 24h] [--resource KIND/NAME] [--failed] [--drift] [-o json]`: what the controller did.

Reads the reconcile journal (`controller.journal`) from the local JSON-lines file when it exists (or
``--journal-file``), else from the CloudWatch Logs group ``/huntaze/ENV/controller-journal`` (``--log-group``), and
shows every event (what changed, when, why) and a summary per resource: how often it drifted, was written,
failed (and the last error and its class), and whether the convergence guard marked it non-converging (the
field, both values, and the time of each flip). Exit 0; 1 if the journal cannot be read.
"""

from __future__ import annotations

import argparse
from typing import Any

from controller.commands._duration import duration


def register(sub: Any) -> None:
    from controller.commands._common import add_identity_arguments

    parser: argparse.ArgumentParser = sub.add_parser("history", help="show what the controller did (its journal)")
    add_identity_arguments(parser)
    parser.add_argument("--since", type=duration, default=duration("24h"), help="how far back (24h)")
    parser.add_argument("--resource", metavar="KIND/NAME", help="only this resource")
    parser.add_argument("--failed", action="store_true", help="only errors")
    parser.add_argument("--drift", action="store_true", help="only drift (corrected or observed)")
    parser.add_argument("--journal-file", default=None, help="local journal file (default: the controller's)")
    parser.add_argument("--log-group", default=None, help="read this CloudWatch Logs group instead")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from controller.commands._common import console, parse_key, stack_name
    from controller.commands.controller import default_journal_file, journal_group
    from controller.journal import read_file_records, read_log_group_records

    since = datetime.now(UTC) - timedelta(seconds=args.since)
    stack = stack_name(args)
    path = Path(args.journal_file or default_journal_file(stack))
    if args.log_group is None and path.exists():
        records = read_file_records(path)
        source = str(path)
    else:
        from common.aws import client

        group = args.log_group or journal_group(args.env)
        try:
            records = read_log_group_records(client("logs"), group, since)
        except Exception as exc:
            print(f"error: cannot read the journal from log group {group} ({type(exc).__name__}: {exc}); "
                  f"no local journal at {path} either")
            return 1
        source = f"log group {group}"
    wanted = str(parse_key(args.resource)) if args.resource else None
    selected = [
        r for r in records
        if r.time >= since and r.type in ("resource", "guard")
        and (wanted is None or r.resource == wanted)
        and (not args.failed or r.error is not None)
        and (not args.drift or "drift" in r.verdicts)
    ]
    summary = summarize(selected)
    cycles = [r for r in records if r.type == "cycle" and r.time >= since]
    if args.output == "json":
        print(json.dumps({
            "source": source, "since": since.isoformat(), "cycles": len(cycles),
            "events": [r.model_dump(mode="json") for r in selected], "resources": summary,
        }, indent=2, default=str))
        return 0
    render(selected, summary, cycles, source, console())
    return 0


def summarize(records: list[Any]) -> dict[str, dict[str, Any]]:
    """Per resource: counts of drift, writes, errors; the last error; its non-converging mark, if any."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.resource is None:
            continue
        row = out.setdefault(r.resource, {"events": 0, "drifted": 0, "written": 0, "failed": 0, "last_error": None,
                                          "error_class": None, "non_converging": None, "last": None})
        row["events"] += 1
        row["last"] = r.time.isoformat(timespec="seconds")
        row["drifted"] += "drift" in r.verdicts
        row["written"] += r.action in ("created", "updated", "replaced")
        if r.error is not None:
            row["failed"] += 1
            row["last_error"], row["error_class"] = r.error, r.error_class
        if r.type == "guard" and r.action == "non-converging" and r.guard:
            row["non_converging"] = r.guard
        elif r.type == "guard" and r.action in ("resumed", "cleared"):
            row["non_converging"] = None
    return out


def _fields(r: Any) -> str:
    from controller.report import show

    if r.type == "guard" and r.guard:
        g = r.guard
        return (f"{g['field']} flipped back {g['flips']} times: desired {show(g['desired'])}, live {show(g['live'])} "
                f"(flips at {', '.join(t[11:19] for t in g.get('flip_times', []))})")
    parts = [f"{c.field}: {show(c.desired)} ← {show(c.live_before)}" for c in r.changes[:4]]
    if len(r.changes) > 4:
        parts.append(f"+{len(r.changes) - 4} more")
    return "; ".join(parts)


def render(records: list[Any], summary: dict[str, dict[str, Any]], cycles: list[Any], source: str, out: Any) -> None:
    from rich.table import Table

    events = Table(title=f"controller journal ({source}): {len(cycles)} cycle(s)")
    for column in ("time", "resource", "action", "verdicts", "changed (desired ← live before)", "error"):
        events.add_column(column, overflow="fold")
    for r in records:
        error = f"[{r.error_class}] {r.error}" if r.error else ""
        events.add_row(r.time.strftime("%m-%d %H:%M:%S"), r.resource or "", r.action, ",".join(r.verdicts),
                       _fields(r), error)
    out.print(events)
    table = Table(title="per resource")
    for column in ("resource", "events", "drifted", "written", "failed", "state / last error"):
        table.add_column(column, overflow="fold")
    for name, row in sorted(summary.items()):
        mark = row["non_converging"]
        if mark:
            state = (f"NON-CONVERGING since {mark.get('since', '?')}: {mark['field']} flipped {mark['flips']}x "
                     f"(huntazectl controller resume {name})")
        elif row["last_error"]:
            state = f"[{row['error_class']}] {row['last_error']}"
        else:
            state = "ok"
        table.add_row(name, str(row["events"]), str(row["drifted"]), str(row["written"]), str(row["failed"]), state)
    out.print(table)
    if not records:
        out.print("no matching journal records in that window")
