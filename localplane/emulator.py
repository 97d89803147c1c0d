"""The moto server as the local plane runs it: `python -m localplane.emulator -H 127.0.0.1 -p PORT`.

Started by `localplane.services.MotoServer` (for `huntazectl up` and every test). It is moto's own server with
one change, for a moto gap we hit: when a queue has an event source mapping, moto's SendMessage itself receives
up to BatchSize visible messages and tries to invoke the function in Docker. Here that fails, so every send burns
a receive on other messages, and after maxReceiveCount moto moves perfectly valid jobs to the DLQ. On AWS, only
Lambda's pollers receive from a mapped queue; locally that poller is `localplane.mapping_runner`. So queues here
never run mappings inline. Mappings are still stored and listed exactly as before.

A second gap, in FIFO long polling: moto snapshots the message groups in flight when a ReceiveMessage starts and
never refreshes it, so a message of such a group that becomes receivable during the poll (its group's earlier
message was deleted) is not returned until the poll times out: up to 20 s late, while AWS returns it at once.
Here the groups blocked by messages in flight when the poll began are re-checked at each pass of the poll (not
within a pass: a delete landing mid-pass must not let the pass skip a group's oldest messages and return a later
one), and messages received by the same call do not block their own group (one receive may return several
messages of a group, in order, as on AWS).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

# The patches below were written against moto 5.2's SQS model (Queue.pending_message_groups, Queue.messages,
# lambda_event_source_mappings). pyproject.toml pins the same range; another version fails at start, clearly.
SUPPORTED_MOTO = ((5, 2), (5, 3))  # >= 5.2, < 5.3


def check_moto_version(version: str) -> str | None:
    """Why this moto cannot run the emulator, or None."""
    low, high = SUPPORTED_MOTO
    wanted = f"moto[server]>={low[0]}.{low[1]},<{high[0]}.{high[1]}"
    fix = (f"the local emulator's patches were written for moto {low[0]}.{low[1]}.x: run "
           f"`.venv/bin/pip install '{wanted}'` (or `bash scripts/setup.sh`)")
    try:
        major_minor = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return f"cannot read the moto version {version!r}; {fix}"
    if low <= major_minor < high:
        return None
    return f"moto {version} is installed, but {fix}"


class _MappingsRunByTheLocalPlane(dict[str, Any]):
    """A queue's mapping table that stays empty: moto then never receives on a mapped queue's behalf."""

    def __setitem__(self, key: str, value: Any) -> None:
        return None


_passes = threading.local()  # per server thread: how many times it has listed each queue's messages


def _pass_number(queue: Any) -> int:
    counts: dict[int, int] = getattr(_passes, "counts", {})
    return counts.get(id(queue), 0)


class _LivePendingGroups:
    """Groups still blocked by a message that was in flight when the receive began.

    The answer is fixed for one pass over the queue's messages (recomputed when the receiving thread lists the
    messages again): a group freed by a delete in the middle of a pass must not let that pass return a later
    message of the group while earlier ones were skipped. Freed groups come back on the next pass, in order.
    """

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.initial = set(queue._pending_messages)
        self._pass = -1
        self._blocked: set[object] = set()

    def __contains__(self, group: object) -> bool:
        current = _pass_number(self.queue)
        if current != self._pass:
            self._pass = current
            self._blocked = {m.group_id for m in list(self.queue._pending_messages) if m in self.initial}
        return group in self._blocked


class _PendingGroups(set[str]):
    """What `Queue.pending_message_groups` returns: a set, whose deepcopy (taken by ReceiveMessage) stays live."""

    def __init__(self, queue: Any, groups: set[str]) -> None:
        super().__init__(groups)
        self.queue = queue

    def __deepcopy__(self, memo: dict[int, Any]) -> _LivePendingGroups:
        return _LivePendingGroups(self.queue)


def patch_moto() -> None:
    from moto.sqs import models

    original_init = models.Queue.__init__
    original_groups: Any = models.Queue.__dict__["pending_message_groups"]  # the property object itself

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.lambda_event_source_mappings = _MappingsRunByTheLocalPlane()

    def pending_message_groups(self: Any) -> _PendingGroups:
        return _PendingGroups(self, original_groups.fget(self))

    original_messages: Any = models.Queue.__dict__["messages"]

    def messages(self: Any) -> Any:
        counts: dict[int, int] = getattr(_passes, "counts", None) or {}
        counts[id(self)] = counts.get(id(self), 0) + 1
        _passes.counts = counts
        return original_messages.fget(self)

    models.Queue.__init__ = init  # type: ignore[method-assign]
    models.Queue.pending_message_groups = property(pending_message_groups)  # type: ignore[method-assign,assignment]
    models.Queue.messages = property(messages)  # type: ignore[method-assign,assignment]


def _exit_now(signum: int, frame: Any) -> None:
    """SIGTERM/SIGINT: leave at once. moto's own handler raises SystemExit, and then the interpreter waits for
    every request thread, including SQS long polls of up to 20 s (it looked like SIGTERM was ignored). The
    emulator holds nothing worth flushing: its state lives in memory only."""
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    import moto
    import moto.server

    problem = check_moto_version(moto.__version__)
    if problem:
        print(f"localplane.emulator: {problem}", file=sys.stderr)
        sys.exit(2)
    patch_moto()
    from localplane.metrics import patch_moto_sqs_counters

    patch_moto_sqs_counters()  # the queue age and send/delete counts CloudWatch has and moto lacks
    moto.server.signal_handler = _exit_now  # moto's main() installs this for SIGINT and SIGTERM
    signal.signal(signal.SIGTERM, _exit_now)
    signal.signal(signal.SIGINT, _exit_now)
    moto.server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
