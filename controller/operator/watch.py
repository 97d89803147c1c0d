"""Watches the spec files so a changed spec is reconciled within seconds (and SIGHUP forces a reload).

Used by `controller.operator.loop`. Polling (every ``poll_s``, default 1 s) of each file's size and mtime under
the ``-f`` paths: no extra dependency, works on every filesystem (also bind mounts and ConfigMap-style symlink
swaps), and costs a few stat calls per second.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def signature(paths: Iterable[str]) -> tuple[tuple[str, int, int], ...]:
    found: list[tuple[str, int, int]] = []
    for raw in paths:
        root = Path(raw)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for file in files:
            try:
                stat = file.stat()
            except OSError:
                continue
            found.append((str(file), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


class SpecWatcher:
    def __init__(self, paths: list[str], on_change: Callable[[], None], poll_s: float = 1.0) -> None:
        self.paths = paths
        self.on_change = on_change
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._last = signature(paths)
        self._thread = threading.Thread(target=self._run, name="spec-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            current = signature(self.paths)
            if current != self._last:
                self._last = current
                self.on_change()
