"""`huntazectl down`: stop the local stack that `huntazectl up --detach` (or --keep) is running.

Sends SIGTERM to the `up` process, which stops the local plane (scraper tasks get SIGTERM and their stopTimeout),
the stand-in platform, Redis and moto, children first. Then it checks every process the stack recorded in its
state file (pid and start time, so a reused pid is never touched) and kills whatever is left, so nothing stays
running even if the `up` process had died. Exit 0 when nothing is left; 1 if something could not be stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

STOP_TIMEOUT_S = 120


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("down", help="stop the local stack started by `up --detach`")
    parser.add_argument("--run-dir", type=Path, default=None, help="the run dir of the stack (default: the one up)")
    parser.add_argument("--timeout", type=float, default=STOP_TIMEOUT_S,
                        help=f"seconds to wait for a clean stop before killing (default {STOP_TIMEOUT_S})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from controller.commands.up import RUNS_DIR
    from localplane.stack import RunState, clear_current, current_run_dir, process_start_time

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    run_dir = args.run_dir or current_run_dir(RUNS_DIR)
    state = RunState.load(run_dir) if run_dir else None
    if state is None:
        console.print("no local stack is up; nothing to stop")
        return 0
    recorded = dict(state.processes)
    if state.alive():
        recorded[str(state.pid)] = {"started": process_start_time(state.pid), "cmd": "huntazectl up"}
        os.kill(state.pid, signal.SIGTERM)
        _wait_for_exit(state, args.timeout, console, recorded)
    left = _kill_leftovers(recorded)
    clear_current(RUNS_DIR, Path(state.run_dir))
    if left:
        console.print(f"[red]could not stop: {left}[/red]")
        return 1
    console.print(f"stopped the local stack of {state.run_dir}; nothing left running "
                  f"(checked {len(recorded)} processes)")
    return 0


def _wait_for_exit(state: Any, timeout_s: float, console: Any, recorded: dict[str, dict[str, Any]]) -> None:
    from localplane.stack import RunState, process_start_time

    deadline = time.monotonic() + timeout_s
    with console.status("stopping…") as status:
        while process_start_time(state.pid) is not None and time.monotonic() < deadline:
            now = RunState.load(Path(state.run_dir))
            if now is not None:
                recorded.update(now.processes)
                status.update(f"stopping: {now.phase}")
            time.sleep(0.2)  # waiting on another process's exit, for a person watching


def _kill_leftovers(recorded: dict[str, dict[str, Any]]) -> dict[int, str]:
    """SIGKILL each recorded process (its whole group) that is still the same process; return what survived."""
    from localplane.stack import still_running

    mine = os.getpgid(0)
    for pid in still_running(recorded):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) != mine:  # never our own group (an `up` started from this same shell job)
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while still_running(recorded) and time.monotonic() < deadline:
        time.sleep(0.1)
    return still_running(recorded)
