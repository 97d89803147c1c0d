"""`huntazectl controller run|resume`: the long-running operator, and clearing a non-converging mark.

``controller run -f PATH… --env E [--interval 60s] [--mode enforce|observe]`` keeps the stack reconciled while it
holds the stack lease (`controller.operator.loop`); it runs locally, as a local ECS service under `huntazectl up`,
and in the account (ecs-specs/controller-*.yaml). SIGTERM/SIGINT: the resources in progress finish, the lease is
released, exit 0; a second signal exits at once. SIGHUP reloads the specs (a changed file also does, within
``--watch-poll``). ``controller resume KIND/NAME`` clears the convergence guard's mark on one resource.

Imports are light at module level (the CLI imports every command module for ``--help``).
"""

from __future__ import annotations

import argparse
from typing import Any

from controller.commands._duration import duration

DEFAULT_JOURNAL_DIR = ".huntaze"


def journal_group(env: str) -> str:
    return f"/huntaze/{env}/controller-journal"


def default_journal_file(stack: str) -> str:
    import os

    return os.environ.get("HUNTAZE_JOURNAL_FILE") or os.path.join(DEFAULT_JOURNAL_DIR, f"journal-{stack}.jsonl")


def register(sub: Any) -> None:
    from controller.commands._common import add_identity_arguments, add_stack_arguments

    parser: argparse.ArgumentParser = sub.add_parser("controller", help="run the operator (keeps reconciling)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    run_p = verbs.add_parser("run", help="reconcile the specs every interval while holding the stack lease")
    add_stack_arguments(run_p)
    run_p.add_argument("--interval", type=duration, default=duration("60s"), help="full resync period (60s)")
    run_p.add_argument("--mode", choices=["enforce", "observe"], default="enforce",
                       help="enforce corrects drift, observe only reports it (per resource: annotation "
                            "huntaze.io/reconcile: observe|enforce|paused)")
    run_p.add_argument("--lease-ttl", type=duration, default=duration("30s"), help="leader lease duration (30s)")
    run_p.add_argument("--guard-flips", type=int, default=3,
                       help="flips back after our writes before a resource is non-converging (3)")
    run_p.add_argument("--journal-file", default=None,
                       help="local JSON-lines journal (default $HUNTAZE_JOURNAL_FILE or .huntaze/journal-STACK.jsonl;"
                            " 'none' to disable)")
    run_p.add_argument("--log-group", default=None,
                       help="CloudWatch Logs group of the journal (default /huntaze/ENV/controller-journal; "
                            "'none' to disable)")
    run_p.add_argument("--concurrency", type=int, default=4, help="resources reconciled at once per tier")
    run_p.add_argument("--watch-poll", type=duration, default=duration("1s"), help="spec file poll period (1s)")
    run_p.add_argument("--var-env", action="append", default=[], metavar="NAME",
                       help="set the ${NAME} variable from the environment variable NAME (ECS injects secrets so)")
    run_p.add_argument("--once", action="store_true", help="run one full cycle (with the lease), then exit")
    run_p.set_defaults(handler=run)
    resume_p = verbs.add_parser("resume", help="clear the non-converging mark of KIND/NAME")
    resume_p.add_argument("resource", metavar="KIND/NAME")
    add_identity_arguments(resume_p)
    resume_p.set_defaults(handler=resume)


def run(args: argparse.Namespace) -> int:
    import os
    import signal
    from pathlib import Path

    from common.aws import client
    from controller.commands._common import load_stack, make_context, stack_name
    from controller.errors import HuntazeCtlError
    from controller.journal import Journal, JsonLinesFile
    from controller.lease import Lease, default_holder
    from controller.operator.guard import GuardStore
    from controller.operator.loop import Operator, OperatorSettings

    for name in args.var_env:
        if name not in os.environ:
            raise HuntazeCtlError(f"--var-env {name}: the environment variable {name} is not set")
        args.variables.append(f"{name}={os.environ[name]}")
    stack = stack_name(args)
    first = load_stack(args)  # a bad spec stops here (exit 2) before any lease or write
    holder = os.environ.get("HUNTAZE_CONTROLLER_ID") or default_holder("controller")
    journal_file = args.journal_file or default_journal_file(stack)
    log_group = args.log_group or journal_group(args.env)
    secrets = tuple(v for k, v in os.environ.items()
                    if any(s in k.upper() for s in ("SECRET", "PASSWORD", "TOKEN", "REDIS_URL")) and len(v) >= 4)
    journal = Journal(
        JsonLinesFile(Path(journal_file)) if journal_file != "none" else None,
        log_group=None if log_group == "none" else log_group,
        log_stream=holder.replace(":", "-").replace("@", "-"),
        logs_client=client("logs"),
        secrets=secrets,
    )
    dynamodb = client("dynamodb")
    lease = Lease(dynamodb, stack, holder, ttl_s=args.lease_ttl, purpose="controller")
    loads = iter([first])

    def load() -> Any:
        return next(loads, None) or load_stack(args)

    settings = OperatorSettings(
        stack=stack, mode=args.mode, interval_s=args.interval, lease_ttl_s=args.lease_ttl,
        guard_threshold=args.guard_flips, concurrency=max(1, args.concurrency), watch_poll_s=args.watch_poll,
        max_cycles=1 if args.once else None,
    )
    operator = Operator(
        settings, load=load, make_context=lambda s, gate: _context(args, s, gate, make_context),
        lease=lease, journal=journal, paths=list(args.paths), guard_store=GuardStore(dynamodb, stack),
        metrics=client("cloudwatch"),
    )

    def on_stop(signum: int, _: object) -> None:
        if operator.stopping.is_set():
            operator.abort()
        operator.say(f"{signal.Signals(signum).name}: finishing the resources in progress, then releasing the "
                     "lease (send it again to exit at once)")
        operator.request_stop()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, lambda *_: operator.request_reload())
    operator.say(f"{holder} starting: stack {stack}, mode {args.mode}, interval {args.interval:g}s, "
                 f"lease ttl {args.lease_ttl:g}s, journal {journal_file} + {log_group}")
    code = operator.run()
    operator.say("stopped")
    return code


def _context(args: argparse.Namespace, stack: Any, gate: Any, make_context: Any) -> Any:
    ctx = make_context(args, stack=stack)
    ctx.client = gate.client
    return ctx


def resume(args: argparse.Namespace) -> int:
    from common.aws import client
    from controller.commands._common import parse_key, stack_name
    from controller.operator.guard import GuardStore

    key = parse_key(args.resource)
    stack = stack_name(args)
    if GuardStore(client("dynamodb"), stack).clear(str(key)):
        print(f"{key}: non-converging mark cleared; the controller writes it again from its next cycle")
        return 0
    print(f"{key}: not marked non-converging in stack {stack}; nothing to clear")
    return 0
