"""`huntazectl apply -f PATH… [--dry-run] [--prune] [--allow-replace KIND/NAME] [--wait]`: make AWS match the specs.

Prints a line per resource (created, updated, unchanged, replaced, pruned, refused...) with the fields that
changed, then a summary; exits 1 if any resource failed or was refused, 2 on a spec or usage error (or when the
stack lock is held by another writer, `controller.commands._lock`). A resource that fails with a temporary error
is requeued (reads and diffs again) until ``--requeue-timeout``. SIGINT/SIGTERM: the call in flight finishes,
what was done and not done is printed, exit 130/143 (`controller.commands._interrupt`).

Then it prints each rollout it started (a Service's task definition old -> new, a Function's versions and
strategy; `controller.rollout_follow`). With ``--wait`` it follows them to their end, a line per change, and
exits 1 when one was rolled back or failed, or still ran at ``--wait-timeout`` (default 15m); 0 when all
completed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from controller.commands._common import (
    add_stack_arguments,
    console,
    load_stack,
    make_context,
    parse_key,
    stack_name,
)
from controller.commands._duration import duration
from controller.commands._lock import add_lock_arguments, run_guarded

DEFAULT_WAIT = "15m"  # an ECS rolling update of a few tasks, or a 10-minute canary, with room to spare
WAIT_POLL_S = 1.0


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("apply", help="create or update resources to match specs")
    add_stack_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    parser.add_argument("--prune", action="store_true", help="delete owned resources that are in no spec")
    parser.add_argument("--allow-replace", action="append", default=[], metavar="KIND/NAME",
                        help="allow deleting and recreating this resource for an immutable change")
    parser.add_argument("--concurrency", type=int, default=4, help="resources applied at once per tier")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    parser.add_argument("--requeue-timeout", type=duration, default=duration("5m"), metavar="DURATION",
                        help="keep retrying resources that failed with a temporary error this long (5m)")
    parser.add_argument("--wait", action="store_true",
                        help="follow the rollouts this apply started (ECS deployments, gate traffic shifts) to "
                             "their end; exit 1 if one was rolled back or failed")
    parser.add_argument("--wait-timeout", type=duration, default=duration(DEFAULT_WAIT), metavar="DURATION",
                        help=f"with --wait: give up waiting after this long, exit 1 ({DEFAULT_WAIT})")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="local plane run dir holding deployments/ (default: .huntaze/current's)")
    add_lock_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from controller.reconciler import ApplyOptions
    from controller.report import render_results, results_json

    allow = frozenset(parse_key(k) for k in args.allow_replace)
    stack = load_stack(args)
    ctx = make_context(args, dry_run=args.dry_run, stack=stack)
    options = ApplyOptions(dry_run=args.dry_run, prune=args.prune, allow_replace=allow,
                           concurrency=max(1, args.concurrency),
                           requeue_deadline_s=0.0 if args.dry_run else args.requeue_timeout,
                           progress=_progress(args))
    if args.dry_run:
        args.lock = False  # a plan writes nothing: no lock, like `terraform plan -lock=false`
    results, interrupts = run_guarded(args, stack_name(args), "apply", ctx, lambda r: r.apply(stack, options),
                                      manifests=stack.manifests)
    if args.output == "json":
        print(json.dumps(results_json(results), indent=2, default=str))
    else:
        render_results(results, console(), dry_run=args.dry_run)
    if interrupts.exit_code is not None:
        interrupts.report(results, "apply")
        return interrupts.exit_code
    failed = any(r.failed for r in results)
    if args.dry_run:
        return 1 if failed else 0
    rolled = _rollouts(args, results)
    return 1 if failed or rolled else 0


def _rollouts(args: argparse.Namespace, results: list[Any]) -> bool:
    """Print the rollouts the apply started; with --wait follow them. True if one did not complete."""
    from common.aws import client
    from controller import rollout_follow

    rollouts = rollout_follow.started(results, client)
    rollout_follow.set_old(rollouts, results)
    say = _say(args)
    for rollout in rollouts:
        say(rollout.started_line())
    if not rollouts or not args.wait:
        if rollouts:
            say("follow: " + "; ".join(r.follow_hint() for r in rollouts) + " (or apply --wait)")
        return False
    run_dir = _run_dir(args.run_dir)
    ecs, lam = client("ecs"), client("lambda")

    def poll(rollout: rollout_follow.Rollout) -> tuple[str, str]:
        if rollout.resource.startswith("Service/"):
            return rollout_follow.poll_service(rollout, ecs, run_dir)
        return rollout_follow.poll_function(rollout, lam)

    say(f"waiting for {len(rollouts)} rollout(s) (at most {args.wait_timeout:g} s)...")
    rollout_follow.follow(rollouts, poll, say, timeout_s=args.wait_timeout, interval_s=WAIT_POLL_S)
    bad = False
    for rollout in rollouts:
        if rollout.state == rollout_follow.COMPLETED:
            say(f"{rollout.resource}: rollout completed ({rollout.new.rsplit('/', 1)[-1]})")
        elif rollout.state in rollout_follow.FINISHED:
            bad = True
            say(f"{rollout.resource}: rollout {rollout.state}: {rollout.detail}; see `{rollout.follow_hint()}`")
        else:
            bad = True
            say(f"{rollout.resource}: still {rollout.state} after {args.wait_timeout:g} s; keep watching with "
                f"`{rollout.follow_hint()}`")
    return bad


def _say(args: argparse.Namespace) -> Any:
    import sys

    stream = sys.stderr if args.output == "json" else sys.stdout  # JSON output stays one document
    return lambda line: print(line, file=stream, flush=True)


def _run_dir(given: Path | None) -> Path | None:
    if given is not None:
        return given
    from controller.commands.up import RUNS_DIR
    from localplane.stack import current_run_dir

    return current_run_dir(RUNS_DIR)


def _progress(args: argparse.Namespace) -> Any:
    from controller.commands._progress import tier_progress

    return tier_progress(args.output)
