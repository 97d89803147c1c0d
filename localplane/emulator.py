"""The moto server as the local plane runs it: `python -m localplane.emulator -H 127.0.0.1 -p PORT`.

Started by `localplane.services.MotoServer` (for `huntazectl up` and every test). It is moto's own server with
one change, for a moto gap we hit: when a queue has an event source mapping, moto's SendMessage itself receives
up to BatchSize visible messages and tries to invoke the function in Docker. Here that fails, so every send burns
a receive on other messages, and after maxReceiveCount moto moves perfectly valid jobs to the DLQ. On AWS, only
Lambda's pollers receive from a mapped queue; locally that poller is `localplane.mapping_runner`. So queues here
never run mappings inline. Mappings are still stored and listed exactly as before.

Left as moto has it, on purpose: FIFO long polls snapshot the message groups in flight when a ReceiveMessage
starts, so a message of such a group freed during the poll waits for the next poll (up to 20 s). Making that
snapshot live was tried and broke per-group ordering under load (a worker test saw a group's messages
delivered out of order), so jobs here may simply wait up to one poll longer than on AWS.
"""

from __future__ import annotations

import sys
from typing import Any


class _MappingsRunByTheLocalPlane(dict[str, Any]):
    """A queue's mapping table that stays empty: moto then never receives on a mapped queue's behalf."""

    def __setitem__(self, key: str, value: Any) -> None:
        return None


def patch_moto() -> None:
    from moto.sqs import models

    original_init = models.Queue.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.lambda_event_source_mappings = _MappingsRunByTheLocalPlane()

    models.Queue.__init__ = init  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    patch_moto()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
