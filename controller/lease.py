"""The stack lock: a leader lease in DynamoDB, taken and renewed with conditional writes.

Used by the operator (`controller.operator.loop`: only the replica holding the lease writes), by `apply` and
`delete` (the same lock, Terraform-style: a second writer waits up to ``--lock-timeout`` or refuses, naming the
holder and since when) and by `huntazectl force-unlock`.

One item per stack in the table ``huntaze-controller-lease`` (partition key ``lockId`` = the stack name; TTL
attribute ``expiresAt``; the table is the spec ``manifests/controller-lease-table.yaml``):

    lockId, holder, since, expiresAt (epoch s), renewedAt, fencing (number), purpose

- Acquire: ``UpdateItem`` with condition *no item, or expired, or already mine*; the fencing number goes up by one
  at every acquisition. If the item was deleted (DynamoDB TTL deletes expired items), the counter restarts at the
  current time in milliseconds, which is above any number handed out before: fencing stays monotonic.
- Renew: ``UpdateItem`` with condition *holder and fencing are still mine*. Release: expire it the same way.
- `held` is a *local* check (no API call) against the monotonic clock, read before every write by
  `controller.calls.CallGate`: the lease counts as held only until ``renew sent + ttl - margin``, measured from
  before the renewing call was sent. A process paused (SIGSTOP) past that instant finds it expired when it
  resumes and writes nothing, even before it learns that another replica took over.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.errors import LeaseLost, LockHeld, error_code

LEASE_TABLE = "huntaze-controller-lease"
KEY = "lockId"
DEFAULT_TTL_S = 30.0


def default_holder(purpose: str) -> str:
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or "?"
    return f"{purpose}:{user}@{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class LeaseState:
    lock_id: str
    holder: str
    since: float
    expires_at: float
    fencing: int
    purpose: str = ""

    @property
    def expired(self) -> bool:
        return self.expires_at <= time.time()

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        left = self.expires_at - time.time()
        state = f"expires in {left:.0f}s" if left > 0 else "expired"
        return f"{self.holder} (since {since}, lock id {self.fencing}, {state})"


def _item_state(item: dict[str, Any]) -> LeaseState:
    return LeaseState(
        lock_id=item[KEY]["S"],
        holder=item.get("holder", {}).get("S", ""),
        since=float(item.get("since", {}).get("N", "0")),
        expires_at=float(item.get("expiresAt", {}).get("N", "0")),
        fencing=int(item.get("fencing", {}).get("N", "0")),
        purpose=item.get("purpose", {}).get("S", ""),
    )


class Lease:
    """One process's view of the stack lock. Thread-safe enough: `held` reads two floats."""

    def __init__(
        self,
        dynamodb: Any,
        lock_id: str,
        holder: str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        table: str = LEASE_TABLE,
        purpose: str = "controller",
        margin_s: float | None = None,
        on_change: Callable[[str, LeaseState | None], None] | None = None,
    ) -> None:
        self.db = dynamodb
        self.lock_id = lock_id
        self.holder = holder
        self.ttl_s = ttl_s
        self.table = table
        self.purpose = purpose
        self.margin_s = margin_s if margin_s is not None else min(2.0, ttl_s / 5)
        self.on_change = on_change
        self.fencing: int | None = None
        self.since: float | None = None
        self._valid_until = 0.0  # time.monotonic() deadline

    # --- local view ----------------------------------------------------------------------------------------

    @property
    def held(self) -> bool:
        return self.fencing is not None and time.monotonic() < self._valid_until

    def check(self) -> None:
        """Raise `LeaseLost` unless the lease is held right now (called before every write)."""
        if not self.held:
            was = self.fencing
            if was is not None:
                self._lost("expired locally (paused or could not renew in time)")
            raise LeaseLost(f"{self.holder} does not hold the lock of stack {self.lock_id}; writing nothing")

    @property
    def remaining_s(self) -> float:
        return max(0.0, self._valid_until - time.monotonic()) if self.fencing is not None else 0.0

    # --- DynamoDB ------------------------------------------------------------------------------------------

    def ensure_table(self, create: Callable[[], None] | None = None) -> bool:
        """Create the lock table if it does not exist (as `terraform init` needs its lock table, bootstrap once);
        True if this call created it.

        ``create``: builds the table from the stack's own ``Table`` spec of it when the stack has one (see
        `controller.lock_table`), so the reconcile that follows finds it as declared. Without one the table is a
        minimal one without stack ownership tags, so `apply --prune` never deletes the lock it is holding.
        """
        try:
            self.db.describe_table(TableName=self.table)
            return False
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        if create is not None:
            try:
                create()
            except Exception as exc:
                if error_code(exc) != "ResourceInUseException":  # another process created it first
                    raise
            self.db.get_waiter("table_exists").wait(TableName=self.table,
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            return True
        try:
            self.db.create_table(
                TableName=self.table,
                AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
                Tags=[{"Key": "huntaze.io/managed-by", "Value": "huntazectl"},
                      {"Key": "huntaze.io/purpose", "Value": "stack-lock"}],
            )
        except Exception as exc:
            if error_code(exc) != "ResourceInUseException":  # another process created it first
                raise
        self.db.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        try:
            self.db.update_time_to_live(
                TableName=self.table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
            )
        except Exception as exc:
            if error_code(exc) not in ("ValidationException",):  # already enabled
                raise
        return True

    def current(self) -> LeaseState | None:
        found = self.db.get_item(TableName=self.table, Key={KEY: {"S": self.lock_id}}, ConsistentRead=True)
        item = found.get("Item")
        if not item or "holder" not in item:
            return None
        return _item_state(item)

    def try_acquire(self) -> bool:
        """Take the lease if it is free, expired or already ours. True if we hold it now."""
        sent = time.monotonic()
        now = time.time()
        try:
            out = self.db.update_item(
                TableName=self.table,
                Key={KEY: {"S": self.lock_id}},
                UpdateExpression=(
                    "SET holder = :me, since = :now, expiresAt = :exp, renewedAt = :now, purpose = :purpose, "
                    "fencing = if_not_exists(fencing, :floor) + :one"
                ),
                ConditionExpression="attribute_not_exists(holder) OR expiresAt < :now OR holder = :me",
                ExpressionAttributeValues={
                    ":me": {"S": self.holder},
                    ":now": {"N": f"{now:.3f}"},
                    ":exp": {"N": f"{now + self.ttl_s:.3f}"},
                    ":purpose": {"S": self.purpose},
                    ":floor": {"N": str(int(now * 1000))},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                if self.fencing is not None:
                    self._lost("another holder took it")
                return False
            raise
        state = _item_state(out["Attributes"])
        gained = self.fencing != state.fencing
        self.fencing = state.fencing
        self.since = state.since
        self._valid_until = sent + self.ttl_s - self.margin_s
        if gained and self.on_change is not None:
            self.on_change("gained", state)
        return True

    def renew(self) -> bool:
        """Extend our lease. False (and the lease is dropped locally) if it is no longer ours."""
        if self.fencing is None:
            return False
        sent = time.monotonic()
        if sent >= self._valid_until:
            self._lost("expired before it could be renewed (the process was paused or too slow)")
            return False
        now = time.time()
        try:
            self.db.update_item(
                TableName=self.table,
                Key={KEY: {"S": self.lock_id}},
                UpdateExpression="SET expiresAt = :exp, renewedAt = :now",
                ConditionExpression="holder = :me AND fencing = :f AND expiresAt >= :now",
                ExpressionAttributeValues={
                    ":me": {"S": self.holder},
                    ":f": {"N": str(self.fencing)},
                    ":now": {"N": f"{now:.3f}"},
                    ":exp": {"N": f"{now + self.ttl_s:.3f}"},
                },
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                self._lost("taken over or expired in the table")
                return False
            raise
        self._valid_until = sent + self.ttl_s - self.margin_s
        return True

    def release(self) -> None:
        """Expire our lease now (keeping the fencing counter) so a standby takes over without waiting."""
        if self.fencing is None:
            return
        fencing, self.fencing = self.fencing, None
        self._valid_until = 0.0
        try:
            self.db.update_item(
                TableName=self.table,
                Key={KEY: {"S": self.lock_id}},
                UpdateExpression="SET expiresAt = :zero, releasedAt = :now REMOVE holder",
                ConditionExpression="holder = :me AND fencing = :f",
                ExpressionAttributeValues={
                    ":me": {"S": self.holder}, ":f": {"N": str(fencing)}, ":zero": {"N": "0"},
                    ":now": {"N": f"{time.time():.3f}"},
                },
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
        if self.on_change is not None:
            self.on_change("released", None)

    def acquire(self, timeout_s: float = 0.0, poll_s: float = 1.0, say: Callable[[str], None] | None = None) -> None:
        """Take the lock, waiting up to ``timeout_s`` (0: refuse at once); `LockHeld` names the holder."""
        deadline = time.monotonic() + timeout_s
        announced = False
        while True:
            if self.try_acquire():
                return
            state = self.current()
            if time.monotonic() >= deadline:
                who = state.describe() if state else "another writer"
                raise LockHeld(
                    f"stack {self.lock_id} is locked by {who}. Wait for it (--lock-timeout 5m), or if that "
                    f"process is gone, run: huntazectl force-unlock {state.fencing if state else 'LOCK_ID'} "
                    f"--stack {self.lock_id}"
                )
            if say is not None and not announced and state is not None:
                say(f"waiting for the stack lock held by {state.describe()}")
                announced = True
            time.sleep(min(poll_s, max(0.05, deadline - time.monotonic())))

    def force_unlock(self, fencing: int) -> LeaseState | None:
        """Expire the lock whatever its holder, if its lock id (fencing number) is still ``fencing``."""
        state = self.current()
        try:
            self.db.update_item(
                TableName=self.table,
                Key={KEY: {"S": self.lock_id}},
                UpdateExpression="SET expiresAt = :zero, releasedAt = :now REMOVE holder",
                ConditionExpression="fencing = :f AND attribute_exists(holder)",
                ExpressionAttributeValues={":f": {"N": str(fencing)}, ":zero": {"N": "0"},
                                           ":now": {"N": f"{time.time():.3f}"}},
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                now = state.describe() if state else "nobody"
                raise LockHeld(f"lock id {fencing} is not the current lock of stack {self.lock_id} "
                               f"(held by {now}); nothing unlocked") from None
            raise
        return state

    def _lost(self, why: str) -> None:
        was = self.fencing
        self.fencing = None
        self._valid_until = 0.0
        if was is not None and self.on_change is not None:
            self.on_change(f"lost: {why}", None)
