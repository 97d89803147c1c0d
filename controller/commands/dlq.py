"""`huntazectl dlq list|show|redrive`: triage and redrive of both dead-letter queues (on-call).

- ``list``: messages per failure class (``error_type``, the scraper's error class; ``validation`` for the gate's
  rejections), then grouped by reason (``error``), creator and action, with counts, the oldest and newest, and
  how many are valid under today's contract.
- ``show ID``: one message, its attributes and its job history (first seen, deferrals, receives, redrives).
- ``redrive [--reason R] [--creator C] [--action A] [--limit N] [--dry-run]``: back to the queue the DLQ serves,
  with the job's identity kept; jobs still invalid are refused and counted by reason.

Reading gives back every message it does not redrive (see `controller.oncall.dlq`). Exit 0; 1 when ``show``
finds no such message or a redrive send failed; 2 on errors. Heavy imports happen in the handlers.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("dlq", help="dead-letter triage and redrive (both DLQs)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--queue", default="all",
                       help="all (default), ingress, workflows, or a queue name (source or DLQ)")
        p.add_argument("-o", "--output", choices=["table", "json"], default="table")

    listing = verbs.add_parser("list", help="group dead letters by reason, creator and action")
    common(listing)
    listing.set_defaults(handler=run_list)
    show = verbs.add_parser("show", help="one dead letter with its attributes and job history")
    show.add_argument("id", help="the DLQ MessageId (from `dlq list -o json` or `dlq redrive --dry-run`)")
    common(show)
    show.set_defaults(handler=run_show)
    again = verbs.add_parser("redrive", help="send dead letters back to their queue, identity kept")
    common(again)
    again.add_argument("--reason", help="error_type (validation, network, auth, rate_limit, unknown, "
                                        "unexplained) or a piece of the error text")
    again.add_argument("--creator", help="only this creator_id")
    again.add_argument("--action", help="only this action")
    again.add_argument("--limit", type=int, help="at most N messages")
    again.add_argument("--dry-run", action="store_true", help="say what would be redriven; change nothing")
    again.set_defaults(handler=run_redrive)


def _pairs(args: argparse.Namespace) -> Any:
    from controller.oncall.queues import dead_letter_pairs, select_pairs

    return select_pairs(dead_letter_pairs(), args.queue)


def run_list(args: argparse.Namespace) -> int:
    import json

    from controller.commands._common import console
    from controller.oncall import dlq

    with dlq.read(_pairs(args)) as reading:
        rows = dlq.groups(reading.letters)
        by_class = dlq.classes(reading.letters)
        unread = dict(reading.unread)
    if args.output == "json":
        print(json.dumps({"by_class": by_class, "groups": rows, "total": sum(r["count"] for r in rows),
                          "unread": unread}, indent=2))
        return 0
    from rich.table import Table

    summary = Table("DLQ", "FAILURE CLASS", "COUNT", "CREATORS", "VALID NOW", "MOST COMMON REASON", "OLDEST",
                    "NEWEST", title="By failure class", title_justify="left")
    for c in by_class:
        summary.add_row(c["dlq"], c["error_type"], str(c["count"]), str(c["creators"]), str(c["valid_today"]),
                        c["top_reason"], c["oldest"] or "-", c["newest"] or "-")
    table = Table("DLQ", "REASON", "ERROR", "CREATOR", "ACTION", "COUNT", "VALID NOW", "OLDEST", "NEWEST")
    for r in rows:
        table.add_row(r["dlq"], r["error_type"], r["reason"], r["creator"], r["action"], str(r["count"]),
                      str(r["valid_today"]), r["oldest"] or "-", r["newest"] or "-")
    out = console()
    if rows:
        out.print(summary)
    out.print(table if rows else "no dead letters")
    for name, count in unread.items():
        out.print(f"{name}: {count} more message(s) could not be read now (FIFO groups held, or in flight); "
                  "they are still there")
    return 0


def run_show(args: argparse.Namespace) -> int:
    import json

    from controller.commands._common import console
    from controller.oncall import dlq

    with dlq.read(_pairs(args)) as reading:
        found = [letter.view() for letter in reading.letters if letter.message_id == args.id]
        unread = dict(reading.unread)
    if not found:
        hint = f" ({sum(unread.values())} message(s) could not be read now; retry)" if unread else ""
        print(f"no dead letter with id {args.id}{hint}; list them with `huntazectl dlq list -o json`")
        return 1
    view = found[0]
    if args.output == "json":
        print(json.dumps(view, indent=2, default=str))
        return 0
    out = console()
    for key in ("id", "dlq", "redrive_to", "reason", "error", "creator", "action", "valid_today", "contract_errors"):
        out.print(f"{key:>16}: {view[key]}")
    out.print("         history:")
    for key, value in view["history"].items():
        out.print(f"{key:>28}: {value}")
    out.print("      attributes:")
    for key, value in sorted(view["attributes"].items()):
        out.print(f"{key:>28}: {value}")
    out.print(f"            body: {view['body']}")
    return 0


def run_redrive(args: argparse.Namespace) -> int:
    import json

    from controller.commands._common import console
    from controller.errors import HuntazeCtlError
    from controller.oncall import dlq

    if args.limit is not None and args.limit < 1:
        raise HuntazeCtlError(f"--limit {args.limit}: must be at least 1")
    selection = dlq.Selection(reason=args.reason, creator=args.creator, action=args.action, limit=args.limit)
    report = dlq.redrive(_pairs(args), selection, dry_run=args.dry_run)
    data = report.as_dict()
    if args.output == "json":
        print(json.dumps(data, indent=2))
    else:
        out = console()
        verb = "would redrive" if args.dry_run else "redrove"
        targets = ", ".join(f"{n} to {q}" for q, n in data["to"].items() if n) or "nothing"
        out.print(f"{verb} {data['redriven']} message(s): {targets}")
        if data["skipped"]:
            out.print(f"skipped {data['skipped']}:")
            for reason, count in data["skipped_by_reason"].items():
                out.print(f"  {count} {reason}")
        for message_id, error in data["failed"].items():
            out.print(f"failed {message_id}: {error} (it stays in the DLQ)")
        for name, count in data["unread"].items():
            out.print(f"{name}: {count} message(s) could not be read this time; run again")
    return 1 if data["failed"] else 0
