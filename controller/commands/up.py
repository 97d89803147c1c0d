"""`huntazectl up`: run the whole stack on this machine, the way AWS would run it.

Starts the embedded local stack (moto server, redis-server, the stand-in creator platform), applies
`manifests/` and `ecs-specs/` with the `local` overlay through the same reconciler as `apply`, then starts the
local plane (event source mapping → gate runtime; ECS service → scraper processes; target tracking). With
``--demo N`` it sends N jobs and waits until each one has a stored result or sits in a DLQ; with ``--keep`` it
stays up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from common.jsonlog import configure_logging
from controller.errors import HuntazeCtlError

REPO_ROOT = Path(__file__).resolve().parents[2]


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("up", help="run the whole pipeline on the embedded local stack")
    parser.add_argument("--demo", type=int, default=0, metavar="N", help="send N demo jobs and wait for them")
    parser.add_argument("--keep", action="store_true", help="stay up until Ctrl-C")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the demo jobs")
    parser.add_argument("--run-dir", type=Path, default=None, help="where logs go (default .huntaze/run-<time>)")
    parser.set_defaults(handler=run)


def _apply(stack: Any, console: Console) -> None:
    from controller.cli import main as cli_main  # the same code path as `huntazectl apply`

    argv = ["apply", "-f", str(REPO_ROOT / "manifests"), "-f", str(REPO_ROOT / "ecs-specs"), "--env", "local",
            "--var", f"REDIS_URL={stack.redis.url}", "--var", f"SITE_URL={stack.site.url}"]
    console.rule("apply")
    code = cli_main(argv)
    if code != 0:
        raise HuntazeCtlError(f"apply of the local stack failed (exit {code}); logs in {stack.run_dir}")


def _status(stack: Any, plane: Any, console: Console) -> None:
    table = Table(title="local stack is up")
    table.add_column("component")
    table.add_column("where")
    table.add_row("AWS APIs (moto)", stack.moto.url)
    table.add_row("Redis", stack.redis.url)
    table.add_row("stand-in platform", stack.site.url)
    for runner in plane.mappings.values():
        table.add_row("event source mapping", f"{runner.source_arn} → {runner.runtime.proc.args[4]}")
    for name, service in plane.services.items():
        table.add_row("ECS service", f"{name.rsplit('/', 1)[-1]}: {len(service.tasks)} task(s)")
    table.add_row("logs", str(stack.run_dir))
    console.print(table)


def run(args: argparse.Namespace) -> int:
    from localplane import demo
    from localplane.plane import LocalPlane
    from localplane.stack import LocalStack

    console = Console()
    run_dir = args.run_dir or REPO_ROOT / ".huntaze" / f"run-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    configure_logging("localplane", stream=(run_dir / "plane.log").open("a"))
    logging.getLogger("botocore").setLevel(logging.WARNING)
    with LocalStack(run_dir) as stack:
        _apply(stack, console)
        plane = LocalPlane(extra_env=stack.aws_env() | {"REDIS_URL": stack.redis.url}, log_dir=run_dir)
        plane.start()
        try:
            _status(stack, plane, console)
            code = _run_demo(args, stack, console, demo) if args.demo else 0
            if args.keep:
                _wait_for_interrupt(console)
            return code
        finally:
            console.print("stopping the local plane and the stack…")
            plane.stop()


def _run_demo(args: argparse.Namespace, stack: Any, console: Console, demo: Any) -> int:
    jobs = demo.demo_jobs(args.demo, stack.site.url)
    started = time.monotonic()
    demo.send(jobs)
    console.print(f"sent {len(jobs)} jobs to huntaze-rate-limiter-queue; waiting for results…")
    seen = {"n": -1}

    def tick(prog: Any) -> None:
        if prog.finished != seen["n"]:
            seen["n"] = prog.finished
            console.print(f"  {prog.done} done, {prog.dead_lettered} dead-lettered "
                          f"({time.monotonic() - started:.0f}s)")

    prog = demo.wait_for(len(jobs), args.timeout, tick)
    table = Table(title="demo outcome")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("jobs sent", str(len(jobs)))
    table.add_row("results stored in S3", str(prog.done))
    for action, count in sorted(prog.by_action.items()):
        table.add_row(f"  {action}", str(count))
    table.add_row("dead-lettered", str(prog.dead_lettered))
    table.add_row("messages the platform received", str(len(stack.site.state.messages())))
    table.add_row("seconds", f"{time.monotonic() - started:.0f}")
    console.print(table)
    if prog.finished < len(jobs):
        console.print(f"[red]{len(jobs) - prog.finished} job(s) unfinished after {args.timeout:.0f}s[/red]")
        return 1
    return 0


def _wait_for_interrupt(console: Console) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print("up; press Ctrl-C to stop")
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
