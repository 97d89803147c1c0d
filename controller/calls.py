"""The gate every AWS call of a reconcile passes through: counting, the lease check, and interrupts.

Used by the operator loop and by `apply`/`delete`. `CallGate.client(service)` returns the shared cached client
of `common.aws` made with few botocore attempts (a separate cache entry from the default clients that the lease,
the journal and the metrics use), with three botocore hooks that act for the gate active in the calling thread:

- ``before-call``: counts the call for the current thread (one thread reconciles one resource at a time, so the
  journal can say how many calls each resource cost, and how many were writes), and refuses to *start* a call
  once an interrupt was requested (`Interrupted`): the call in flight finishes, no new one begins.
- ``before-send``: for every write (any operation that is not Describe/Get/List/Head/Query/Scan...), checks that
  this process still holds the stack lock (`controller.lease.Lease.check`, a local check, no API call) right
  before the request goes on the wire, and on every botocore retry of it. A replica that lost the lease, or was
  paused past its expiry, raises `LeaseLost` instead of writing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from controller.errors import Interrupted

READ_PREFIXES = ("Describe", "Get", "List", "Head", "Query", "Scan", "BatchGet", "Filter", "Lookup", "Search")


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES)


@dataclass
class CallCount:
    reads: int = 0
    writes: int = 0

    @property
    def total(self) -> int:
        return self.reads + self.writes


_active = threading.local()  # the gate of the resource this thread is reconciling


def _current() -> CallGate | None:
    gate: CallGate | None = getattr(_active, "gate", None)
    return gate


def _before_call(model: Any = None, **_: Any) -> None:
    gate = _current()
    if gate is not None:
        gate.before_call(str(getattr(model, "name", "")))


def _after_call(model: Any = None, **_: Any) -> None:
    gate = _current()
    if gate is not None:
        gate.after_call(str(getattr(model, "name", "")))


def _before_send(event_name: str = "", **_: Any) -> None:
    gate = _current()
    if gate is not None:
        gate.before_send(event_name.rsplit(".", 1)[-1])


class CallGate:
    """Clients are the shared cached ones of `common.aws` (with few botocore attempts), hooked once; the hooks act
    for the gate *active in the calling thread* (`activate()`, called by the reconciler for each resource), so
    several gates in one process (tests, consecutive applies) never see each other's calls."""

    def __init__(self, check_write: Callable[[], None] | None = None, max_attempts: int = 3) -> None:
        self.check_write = check_write
        # botocore retries single calls (adaptive mode); few attempts, since a failed resource is requeued anyway
        self.max_attempts = max_attempts
        self.interrupt = threading.Event()
        self._local = threading.local()
        self._lock = threading.Lock()
        self.totals = CallCount()
        self.writes_by_operation: dict[str, int] = {}

    def activate(self) -> None:
        _active.gate = self

    @staticmethod
    def deactivate() -> None:
        _active.gate = None

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Count this thread's calls inside the block in `totals` (no resource's count): a pass's batch reads,
        made before its resources are reconciled, so a cycle's read calls are all it made."""
        previous = _current()
        self.activate()
        try:
            yield
        finally:
            _active.gate = previous

    # --- per-thread counting ------------------------------------------------------------------------------

    def reset(self) -> None:
        self.activate()
        self._local.count = CallCount()

    def count(self) -> CallCount:
        found: CallCount | None = getattr(self._local, "count", None)
        if found is None:
            found = CallCount()
            self._local.count = found
        return found

    # --- clients ------------------------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        from common.aws import client

        made = client(service, max_attempts=self.max_attempts)
        events = made.meta.events
        events.register("before-call", _before_call, unique_id="huntaze-gate-before-call")
        events.register("before-send", _before_send, unique_id="huntaze-gate-before-send")
        events.register("after-call", _after_call, unique_id="huntaze-gate-after-call")
        return made

    def before_call(self, operation: str) -> None:
        if self.interrupt.is_set():
            raise Interrupted("interrupted: no further AWS call was started")
        if is_read(operation):
            self.count().reads += 1
            with self._lock:
                self.totals.reads += 1

    def after_call(self, operation: str) -> None:
        """A write is counted once it was sent (whatever AWS answered): refused-by-the-lease writes never are."""
        if not is_read(operation):
            self.count().writes += 1
            with self._lock:
                self.totals.writes += 1
                self.writes_by_operation[operation] = self.writes_by_operation.get(operation, 0) + 1

    def before_send(self, operation: str) -> None:
        if self.check_write is not None and not is_read(operation):
            self.check_write()
