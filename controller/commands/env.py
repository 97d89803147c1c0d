"""`huntazectl env`: print the `export` lines that point a shell at the running local stack.

    eval "$(huntazectl env)"          # AWS_ENDPOINT_URL, region, local credentials, REDIS_URL, HUNTAZE_SITE_URL
    eval "$(huntazectl env --unset)"  # back to the shell's own AWS settings

As `minikube docker-env` does it: the values come from the state file of the stack that `huntazectl up` (with
--detach or --keep) is running (`localplane.stack.RunState`); nothing is started.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from controller.errors import HuntazeCtlError


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "env", help="print export lines that point a shell at the running local stack (eval \"$(huntazectl env)\")"
    )
    parser.add_argument("--unset", action="store_true", help="print unset lines instead")
    parser.add_argument("--run-dir", type=Path, default=None, help="the run dir of the stack (default: the one up)")
    parser.set_defaults(handler=run)


def export_lines(env: dict[str, str]) -> list[str]:
    return [f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())]


def running_state(run_dir: Path | None) -> Any:
    """The state of the stack that is up, or an error that says how to start one."""
    from controller.commands.up import RUNS_DIR
    from localplane.stack import RunState, current_run_dir

    where = run_dir or current_run_dir(RUNS_DIR)
    state = RunState.load(where) if where else None
    if state is None or not state.alive():
        raise HuntazeCtlError("no local stack is up; start one with `huntazectl up --detach`")
    if state.phase != "up":
        raise HuntazeCtlError(f"the local stack is not ready yet ({state.phase}); try again in a few seconds")
    return state


def run(args: argparse.Namespace) -> int:
    state = running_state(args.run_dir)
    if args.unset:
        print("\n".join(f"unset {name}" for name in sorted(state.env)))
        return 0
    print("\n".join(export_lines(state.env)))
    print(f"# the local stack of {state.run_dir} (pid {state.pid})")
    print('# To point your shell at it, run: eval "$(huntazectl env)"')
    return 0
