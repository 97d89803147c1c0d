"""Counts the AWS API calls of one `status` refresh (shown as ``api_calls``; bench/oncall prints them).

Uses `common.aws.add_event_hook` (``before-call`` on every client), registered once per process. The active
counter lives in a context variable, so only calls made by the refresh (its thread, and the worker threads it
runs with a copy of its context) are counted, never those of other threads in the process (the local plane).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from common.aws import add_event_hook


@dataclass
class CallCount:
    by_operation: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def total(self) -> int:
        return sum(self.by_operation.values())


_active: contextvars.ContextVar[CallCount | None] = contextvars.ContextVar("huntaze_call_count", default=None)
_install_lock = threading.Lock()
_installed = False


def _hook(model: Any = None, **_: Any) -> None:
    count = _active.get()
    if count is None:
        return
    name = f"{model.service_model.service_name}.{model.name}" if model is not None else "?"
    with count.lock:
        count.by_operation[name] += 1


@contextlib.contextmanager
def counting() -> Iterator[CallCount]:
    global _installed  # noqa: PLW0603 - one hook per process
    with _install_lock:
        if not _installed:
            add_event_hook("before-call", _hook)
            _installed = True
    count = CallCount()
    token = _active.set(count)
    try:
        yield count
    finally:
        _active.reset(token)
