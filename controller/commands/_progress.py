"""Rich progress of `huntazectl apply`'s dependency tiers, on stderr while a terminal watches.

`controller.commands.apply` passes `tier_progress()` as `ApplyOptions.progress`; the reconciler calls it as each
tier starts and each resource ends (`controller.reconciler.PassProgress`). One transient bar per tier, so the
report printed afterwards stands alone; nothing is drawn for a pipe, a file or ``-o json``.
"""

from __future__ import annotations

import sys
import threading
from typing import Any


class TierProgress:
    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), console=console, transient=True)
        self._task: Any = None
        self._lock = threading.Lock()
        self._started = False

    def tier_started(self, number: int, tiers: int, size: int) -> None:
        with self._lock:
            if not self._started:
                self._bars.start()
                self._started = True
            if self._task is not None:
                self._bars.remove_task(self._task)
            self._task = self._bars.add_task(f"tier {number}/{tiers}", total=size)

    def resource_done(self, result: Any) -> None:
        with self._lock:
            if self._task is not None:
                self._bars.update(self._task, advance=1, description=self._description(result))

    def _description(self, result: Any) -> str:
        task = self._bars.tasks[-1]
        tier = task.description.split(":", 1)[0]
        return f"{tier}: {result.key} {result.action}"

    def finished(self) -> None:
        with self._lock:
            if self._started:
                self._bars.stop()
                self._started = False


def tier_progress(output: str) -> TierProgress | None:
    """A progress display for apply when stderr is a terminal and the output is meant for a person."""
    if output == "json" or not sys.stderr.isatty():
        return None
    from rich.console import Console

    return TierProgress(Console(stderr=True))
