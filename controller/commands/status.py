"""`huntazectl status [--watch] [-o json]`: is the pipeline healthy, and if not, why (on-call's one screen).

Diagnosis first (rules in `controller.oncall.diagnosis`), then alarms in ALARM with their runbook, queues, gate,
scraper and controller. One refresh costs about 20 AWS calls (counted and shown as ``api_calls``). Exit 0 when
healthy, 1 when a rule fired, 2 on errors. Heavy imports happen in the handler (fast `huntazectl --help`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("status", help="on-call screen: diagnosis, alarms, queues, "
                                                                    "gate, scraper, controller")
    parser.add_argument("--env", default=os.environ.get("HUNTAZE_ENV", "local"), help="environment (default local)")
    parser.add_argument("--cluster", default="huntaze", help="ECS cluster of the scraper (default huntaze)")
    parser.add_argument("--journal", default=None, help="controller journal file (JSON lines); default "
                                                         "$HUNTAZE_JOURNAL, else the /huntaze/ENV/controller-journal "
                                                         "log group")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="local plane run dir holding deployments/ (default: .huntaze/current's)")
    parser.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes with --watch")
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.set_defaults(handler=run)


def refresh(args: argparse.Namespace) -> dict[str, Any]:
    """One snapshot with its diagnosis, the AWS calls it cost and how long it took."""
    import dataclasses
    import time

    from controller.oncall import collect, diagnosis
    from controller.oncall.calls import counting

    started = time.perf_counter()
    with counting() as calls:
        snapshot = collect.collect(env=args.env, cluster=args.cluster, journal=args.journal,
                                   run_dir=args.run_dir)
    findings = diagnosis.diagnose(snapshot)
    data = dataclasses.asdict(snapshot)
    return {"diagnosis": [f.as_dict() for f in findings], **data, "api_calls": calls.total,
            "api_calls_by_operation": dict(calls.by_operation), "refresh_ms": round(
                (time.perf_counter() - started) * 1000)}


def run(args: argparse.Namespace) -> int:
    import json
    import time

    if args.output == "json":
        while True:
            data = refresh(args)
            print(json.dumps(data, indent=None if args.watch else 2, default=str), flush=True)
            if not args.watch:
                return 0 if data["diagnosis"][0]["rule"] == "healthy" else 1
            time.sleep(max(0.5, args.interval))
    from rich.live import Live

    from controller.commands._common import console
    from controller.oncall.render import render

    data = refresh(args)
    if not args.watch:
        console().print(render(data))
        return 0 if data["diagnosis"][0]["rule"] == "healthy" else 1
    with Live(render(data), auto_refresh=False, console=console()) as live:
        while True:  # until Ctrl-C: huntazectl exits 130, as for any interrupted command
            time.sleep(max(0.5, args.interval))
            live.update(render(refresh(args)), refresh=True)
