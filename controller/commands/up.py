"""`huntazectl up`: run the whole stack on this machine, the way AWS would run it.

Starts the embedded local stack (moto server, redis-server, the stand-in creator platform), applies
`manifests/` and `ecs-specs/` with the `local` overlay through the same reconciler as `apply`, then starts the
local plane (event source mapping → gate runtime; ECS service → scraper processes; target tracking). With
``--demo N`` it also makes a console edit of one live field (boto3, as in the AWS console), sends N jobs and
waits until each one has a stored result or sits in a DLQ, and until the controller service (one more local ECS
service) has corrected the edit, printing its journal record of it (`controller.commands._console_edit`); with
``--keep`` it
stays up until Ctrl-C; with ``--detach`` it stays up in the background (stop it with `huntazectl down`).

While up, ``<run dir>/state.json`` holds the endpoints, the shell environment and the pids it owns
(`localplane.stack.RunState`), and ``.huntaze/current`` names that run dir: `huntazectl env` prints the export
lines from it, `huntazectl down` stops it. Each start and stop step is shown as it happens.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.errors import HuntazeCtlError

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNS_DIR = Path(os.environ.get("HUNTAZE_RUNS_DIR") or REPO_ROOT / ".huntaze")  # tests use their own
DETACH_START_TIMEOUT_S = 300
STATE_REFRESH_S = 2.0
# The local controller service runs at the production interval (ecs-specs/controller-task.yaml: 60 s, ±10 %
# jitter): a console edit is corrected within one interval plus a cycle; the rest is margin for a busy machine.
CONTROLLER_CORRECTION_TIMEOUT_S = 60 * 1.1 + 60


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("up", help="run the whole pipeline on the embedded local stack")
    parser.add_argument("--demo", type=int, default=0, metavar="N", help="send N demo jobs and wait for them")
    parser.add_argument("--keep", action="store_true", help="stay up until Ctrl-C")
    parser.add_argument("--detach", action="store_true",
                        help="stay up in the background; `huntazectl down` stops it, `huntazectl env` points a shell")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the demo jobs")
    parser.add_argument("--run-dir", type=Path, default=None, help="where logs go (default .huntaze/run-<time>)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the detached process itself
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    run_dir: Path = (args.run_dir or RUNS_DIR / f"run-{datetime.now(UTC):%Y%m%dT%H%M%S}").resolve()
    _refuse_second_stack()
    run_dir.mkdir(parents=True, exist_ok=True)
    if args.detach:
        if args.demo:
            raise HuntazeCtlError("--detach with --demo: start with --detach, then send jobs with `huntazectl send`")
        return _detach(run_dir)
    return _serve(args, run_dir)


def _refuse_second_stack() -> None:
    from localplane.stack import RunState, current_run_dir

    current = current_run_dir(RUNS_DIR)
    state = RunState.load(current) if current else None
    if state and state.alive():
        raise HuntazeCtlError(f"a local stack is already up (pid {state.pid}, {state.run_dir}); "
                              "use it (`eval \"$(huntazectl env)\"`) or stop it with `huntazectl down`")


def _detach(run_dir: Path) -> int:
    """Start `up --serve` in its own session and return once its state says it is up (or it failed)."""
    import subprocess

    from rich.console import Console

    from localplane.stack import RunState

    console = Console(stderr=True, soft_wrap=True)
    log = (run_dir / "up.log").open("ab")
    argv = [sys.executable, "-m", "controller", "up", "--serve", "--run-dir", str(run_dir)]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=REPO_ROOT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + DETACH_START_TIMEOUT_S
    with console.status("starting the local stack in the background…") as status:
        while time.monotonic() < deadline:
            state = RunState.load(run_dir)
            if state and state.pid == proc.pid and state.phase == "up":
                break
            if proc.poll() is not None:
                tail = (run_dir / "up.log").read_text(errors="replace")[-2000:]
                raise HuntazeCtlError(f"the background stack exited with code {proc.returncode}:\n{tail}")
            status.update(f"starting the local stack in the background: {state.phase if state else 'launching'}…")
            time.sleep(0.2)  # polling a file another process writes, for a person watching
        else:
            os.killpg(proc.pid, signal.SIGTERM)
            raise HuntazeCtlError(f"the background stack did not come up in {DETACH_START_TIMEOUT_S}s; "
                                  f"see {run_dir / 'up.log'}")
    print_usage(state, detached=True)
    return 0


def print_usage(state: Any, *, detached: bool) -> None:
    """The export lines and the exact commands that work against the running stack (issue 12, item 5)."""
    from rich.console import Console

    from controller.commands.env import export_lines

    console = Console(highlight=False, soft_wrap=True)
    env = state.env
    console.print(f"[bold]local stack is up[/bold] (pid {state.pid}; logs in {state.run_dir})")
    for name, url in state.endpoints.items():
        console.print(f"  {name:<22} {url}")
    console.print("\n[bold]Point a shell at it[/bold] (or run `eval \"$(huntazectl env)\"`):")
    for line in export_lines(env):
        console.print(f"  {line}")
    variables = f"--var REDIS_URL={env['REDIS_URL']} --var SITE_URL={env['HUNTAZE_SITE_URL']}"
    console.print("\n[bold]Then, from the repository:[/bold]")
    for command in (
        "huntazectl send --action send_message --creator creator_ava --text hello --count 3",
        "huntazectl send --action scrape_profile --creator creator_ben --count 20 --rate 2/s",
        "huntazectl results --creator creator_ava -o json",
        "huntazectl get queue",
        f"huntazectl diff -f manifests -f ecs-specs --env local {variables}",
        f"huntazectl apply -f manifests -f ecs-specs --env local {variables}",
    ):
        console.print(f"  {command}")
    console.print(f"  {'huntazectl down' if detached else 'Ctrl-C here'}   # stop everything")


def _serve(args: argparse.Namespace, run_dir: Path) -> int:
    import logging

    from rich.console import Console

    from common.jsonlog import configure_logging
    from localplane.plane import LocalPlane
    from localplane.stack import LocalStack, RunState, clear_current, mark_current, process_start_time

    console = Console(highlight=False, soft_wrap=True)
    configure_logging("localplane", stream=(run_dir / "plane.log").open("a"))
    logging.getLogger("botocore").setLevel(logging.WARNING)
    state = RunState(run_dir=str(run_dir), pid=os.getpid(), phase="starting",
                     pid_started=process_start_time(os.getpid()))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def step(what: str) -> None:
        state.phase = what
        state.save()
        console.print(f"[dim]·[/dim] {what}")

    mark_current(RUNS_DIR, run_dir)
    state.save()
    try:
        with LocalStack(run_dir, on_step=step) as stack:
            step("applying manifests/ and ecs-specs/ (local overlay)")
            _apply(stack)
            step("starting the local plane (gate runtime, scraper tasks, autoscaler)")
            plane = LocalPlane(extra_env=stack.aws_env() | {"REDIS_URL": stack.redis.url}, log_dir=run_dir)
            plane.start()
            try:
                return _while_up(args, stack, plane, state, stop=stop, console=console)
            finally:
                step("stopping the local plane (scraper tasks get SIGTERM and up to 30 s to finish)")
                plane.stop()
    finally:
        state.phase = "down"
        state.save()
        clear_current(RUNS_DIR, run_dir)
        _report_leftovers(console)


def _report_leftovers(console: Any) -> None:
    from localplane.stack import descendants

    deadline = time.monotonic() + 10
    left = descendants(os.getpid())
    while left and time.monotonic() < deadline:  # children are reaped a moment after they are told to stop
        time.sleep(0.2)
        left = descendants(os.getpid())
    if left:
        listed = ", ".join(f"{pid} {str(info['cmd'])[:60]}" for pid, info in left.items())
        console.print(f"[red]still running: {listed}[/red]")
    else:
        console.print("stopped; nothing left running")


def _while_up(args: argparse.Namespace, stack: Any, plane: Any, state: Any, *, stop: threading.Event,
              console: Any) -> int:
    state.env = stack.shell_env()
    state.endpoints = {"AWS APIs (moto)": stack.moto.url, "Redis": stack.redis.url,
                       "stand-in platform": stack.site.url, "logs": str(stack.run_dir)}
    state.phase = "up"
    _record_processes(state)
    refresher = threading.Thread(target=_refresh_processes, args=(state, stop), name="state", daemon=True)
    refresher.start()
    _status(stack, plane, console)
    code = _run_demo(args, stack, console) if args.demo else 0
    if args.keep or args.serve:
        if args.keep:
            print_usage(state, detached=False)
        _wait_for_stop(stop, console)
    stop.set()
    refresher.join(timeout=10)
    return code


def _record_processes(state: Any) -> None:
    from localplane.stack import descendants

    state.processes = {str(pid): info for pid, info in descendants(state.pid).items()}
    state.save()


def _refresh_processes(state: Any, stop: threading.Event) -> None:
    """Scale-out starts tasks: keep the recorded pids current, so `down` can check every one is gone."""
    while not stop.wait(STATE_REFRESH_S):
        with contextlib.suppress(OSError):
            _record_processes(state)


def _apply(stack: Any) -> None:
    from controller.cli import main as cli_main  # the same code path as `huntazectl apply`
    from localplane.stack import apply_argv

    code = cli_main(apply_argv(REPO_ROOT, stack))
    if code != 0:
        raise HuntazeCtlError(f"apply of the local stack failed (exit {code}); logs in {stack.run_dir}")


def _status(stack: Any, plane: Any, console: Any) -> None:
    from rich.table import Table

    table = Table(title="local stack is up")
    table.add_column("component")
    table.add_column("where")
    table.add_row("AWS APIs (moto)", stack.moto.url)
    table.add_row("Redis", stack.redis.url)
    table.add_row("stand-in platform", stack.site.url)
    for runner in plane.mappings.values():
        pollers = f"{runner.concurrency} poller(s)"
        table.add_row("event source mapping", f"{runner.source_arn} → {runner.function_name}, {pollers}")
    for name, service in plane.services.items():
        table.add_row("ECS service", f"{name.rsplit('/', 1)[-1]}: {len(service.tasks)} task(s)")
    table.add_row("logs", str(stack.run_dir))
    console.print(table)


def _run_demo(args: argparse.Namespace, stack: Any, console: Any) -> int:
    from rich.table import Table

    from controller.commands import _console_edit
    from controller.commands.controller import journal_group
    from localplane import demo

    edit = _console_edit.make_edit()
    console.print(f"console edit (boto3, as in the AWS console): {edit.describe()}; the controller service "
                  "puts it back at its next cycle")
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
    jobs_s = time.monotonic() - started
    console.print("waiting for the controller service to correct the console edit…")
    correction = _console_edit.wait_for_correction(edit, journal_group("local"), CONTROLLER_CORRECTION_TIMEOUT_S)
    console.print(correction.describe() if correction is not None else
                  f"[red]the console edit ({edit.describe()}) was not corrected within "
                  f"{CONTROLLER_CORRECTION_TIMEOUT_S:.0f} s: see the controller's log in {stack.run_dir}[/red]")
    table = Table(title="demo outcome")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("jobs sent", str(len(jobs)))
    table.add_row("results stored in S3", str(prog.done))
    for action, count in sorted(prog.by_action.items()):
        table.add_row(f"  {action}", str(count))
    table.add_row("dead-lettered", str(prog.dead_lettered))
    table.add_row("messages the platform received", str(len(stack.site.state.messages())))
    table.add_row("seconds", f"{jobs_s:.0f}")
    table.add_row("console edit corrected by the controller after (s)",
                  f"{correction.seconds:.0f}" if correction is not None else "not corrected")
    console.print(table)
    if prog.finished < len(jobs):
        console.print(f"[red]{len(jobs) - prog.finished} job(s) unfinished after {args.timeout:.0f}s[/red]")
        return 1
    return 0 if correction is not None else 1


def _wait_for_stop(stop: threading.Event, console: Any) -> None:
    console.print("up; press Ctrl-C to stop" if sys.stdin.isatty() else "up; `huntazectl down` stops it")
    with contextlib.suppress(KeyboardInterrupt):
        while not stop.wait(0.5):  # a short wait keeps Ctrl-C responsive in the main thread
            pass
