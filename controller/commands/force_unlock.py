"""`huntazectl force-unlock LOCK_ID [--env E | --stack S]`: break a stale stack lock, as `terraform force-unlock`.

LOCK_ID is the fencing number printed when the lock is refused ("lock id N"): the lock is released only if it is
still that one, so a lock taken since by someone else is never broken by mistake. A running controller whose
lock was broken stops writing at its next lease check and takes the lock again when it is free.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    from controller.commands._common import add_identity_arguments

    parser: argparse.ArgumentParser = sub.add_parser("force-unlock", help="release a stale stack lock by its lock id")
    parser.add_argument("lock_id", type=int, metavar="LOCK_ID", help="the lock id (fencing number) to release")
    add_identity_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from common.aws import client
    from controller.commands._common import stack_name
    from controller.lease import Lease, default_holder

    stack = stack_name(args)
    lease = Lease(client("dynamodb"), stack, default_holder("force-unlock"))
    broken = lease.force_unlock(args.lock_id)
    print(f"stack {stack}: lock {args.lock_id} released" + (f" (was held by {broken.describe()})" if broken else ""))
    return 0
