"""Ctrl-C and SIGTERM for the one-shot writers (`apply`, `delete`), as Terraform does it.

Not a command (leading underscore). The first SIGINT/SIGTERM asks the reconciler to start nothing new: the AWS
call in flight finishes (`controller.calls.CallGate` refuses the next one), then the command prints what was
done, what was cut short and what was not done, and exits 130 (SIGINT) or 143 (SIGTERM). A second one exits at
once, saying so.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any


class InterruptHandler:
    def __init__(self, reconciler: Any, gate: Any) -> None:
        self.reconciler = reconciler
        self.gate = gate
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> InterruptHandler:
        """Install the handlers (main thread only; elsewhere the process's own handling stays)."""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, _: object) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            print(f"\n{name} again: stopping NOW. The AWS call in flight may or may not have completed; run the "
                  "command again to see and finish what is left.", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.signum = signum
        print(f"\n{name}: finishing the AWS call in flight, then stopping (press Ctrl-C again to stop at once)...",
              file=sys.stderr, flush=True)
        self.reconciler.stop.set()
        self.gate.interrupt.set()

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + self.signum

    def report(self, results: Iterable[Any], verb: str) -> None:
        """What was done, cut short and not done (on stderr, one resource a line)."""
        from controller.reconciler import Action

        done, partial, untouched = [], [], []
        for r in results:
            if r.action is Action.NOT_STARTED:
                untouched.append(f"  not done  {r.key}  (not started)")
            elif r.failed and r.write_calls:
                partial.append(f"  partial   {r.key}  interrupted after {r.write_calls} write call(s): "
                               f"{verb} again to finish it")
            elif r.failed:
                untouched.append(f"  not done  {r.key}  ({r.action}: {r.message})")
            else:
                done.append(f"  done      {r.key}  {r.action}")
        name = signal.Signals(self.signum).name if self.signum else "interrupt"
        lines = [f"Interrupted by {name}: {len(done)} done, {len(partial)} cut short, {len(untouched)} not done.",
                 *done, *partial, *untouched,
                 f"Nothing was rolled back. Run `huntazectl {verb}` again to finish."]
        print("\n".join(lines), file=sys.stderr, flush=True)
