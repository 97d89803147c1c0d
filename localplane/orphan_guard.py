"""``python -m localplane.orphan_guard -- CMD ARGS…``: run CMD, and stop it as ECS would if our parent dies.

Started by `localplane.service_runner` around every local ECS task, so a scraper task never outlives a killed
``huntazectl up`` or test run. PR_SET_PDEATHSIG cannot be used on the task directly: it fires when the *thread*
that started the task exits (the local plane's loop thread ends before the plane stops its tasks), not only
when the process dies. The guard instead watches its parent *process* (``getppid`` changes when it dies) and
then stops the task the ECS way: SIGTERM, the stop timeout, then SIGKILL. SIGTERM and SIGINT sent to the guard
are passed on to the task; the guard exits with the task's exit code (128+N when a signal N ended it). If the
guard itself is killed, the task gets SIGKILL from the kernel (the guard's main thread started it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType

from localplane.services import die_with_parent

STOP_TIMEOUT_S = 30.0  # ECS's default stopTimeout
POLL_S = 0.5


def run(command: list[str], stop_timeout_s: float = STOP_TIMEOUT_S) -> int:
    parent = os.getppid()
    child = subprocess.Popen(command, preexec_fn=die_with_parent)  # noqa: PLW1509 - single-threaded here

    def forward(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        try:
            code = child.wait(timeout=POLL_S)
            return code if code >= 0 else 128 - code
        except subprocess.TimeoutExpired:
            pass
        if os.getppid() != parent:  # the process that started us is gone: nobody will stop the task
            child.terminate()
            try:
                child.wait(timeout=stop_timeout_s)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            return 143


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" in args:
        args = args[args.index("--") + 1:]
    if not args:
        print("usage: python -m localplane.orphan_guard -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
