"""The convergence guard: a field that drifts back N times after our successful writes is someone else's fight.

Used by `controller.operator.loop`. After the controller corrected field F of a resource, F drifting again is a
*flip*. At ``threshold`` flips (default 3) the resource is marked ``non-converging`` and the loop stops writing
it (it is still read and journaled). The mark records the field, the desired and live values, the count and the
time of each flip (CloudTrail-style attribution is not available locally). It is stored in the lease table (item
``<stack>#guard``) so a new leader keeps it and `huntazectl controller resume KIND/NAME` can clear it from a
laptop; a spec change of the resource clears it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controller.errors import error_code
from controller.lease import KEY, LEASE_TABLE
from controller.model import ResourceKey

DEFAULT_THRESHOLD = 3


@dataclass
class Flip:
    time: str
    desired: Any
    live: Any


@dataclass
class FieldHistory:
    corrected: bool = False  # we wrote this field successfully at least once
    flips: list[Flip] = field(default_factory=list)


class Guard:
    def __init__(self, threshold: int = DEFAULT_THRESHOLD) -> None:
        self.threshold = threshold
        self.history: dict[ResourceKey, dict[str, FieldHistory]] = {}
        self.spec: dict[ResourceKey, str] = {}

    def observe(
        self, key: ResourceKey, spec: str, drifted: dict[str, tuple[Any, Any]], wrote: bool
    ) -> dict[str, Any] | None:
        """Record one cycle's drifted fields ``{path: (desired, live)}``; returns a mark when the guard trips.

        ``wrote`` is True when the controller successfully corrected them in this cycle.
        """
        if self.spec.get(key) != spec:
            self.history.pop(key, None)  # a spec change starts over
            self.spec[key] = spec
        fields = self.history.setdefault(key, {})
        mark: dict[str, Any] | None = None
        for path, (desired, live) in drifted.items():
            hist = fields.setdefault(path, FieldHistory())
            if hist.corrected:
                hist.flips.append(Flip(datetime.now(UTC).isoformat(timespec="seconds"), desired, live))
                if len(hist.flips) >= self.threshold and mark is None:
                    mark = {
                        "resource": str(key), "field": path, "desired": desired, "live": live,
                        "flips": len(hist.flips), "flip_times": [f.time for f in hist.flips],
                        "spec": spec, "since": datetime.now(UTC).isoformat(timespec="seconds"),
                        "attribution": "not available (no CloudTrail locally): see flip_times",
                    }
            if wrote:
                hist.corrected = True
        return mark

    def forget(self, key: ResourceKey) -> None:
        self.history.pop(key, None)


class GuardStore:
    """Marks, persisted as one item per stack in the lease table (a map ``marks`` of KIND/NAME -> JSON)."""

    def __init__(self, dynamodb: Any, stack: str, table: str = LEASE_TABLE) -> None:
        self.db = dynamodb
        self.table = table
        self.item_id = f"{stack}#guard"

    def load(self) -> dict[str, dict[str, Any]]:
        try:
            found = self.db.get_item(TableName=self.table, Key={KEY: {"S": self.item_id}}, ConsistentRead=True)
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return {}
            raise
        marks = found.get("Item", {}).get("marks", {}).get("M", {})
        return {k: json.loads(v["S"]) for k, v in marks.items()}

    def save(self, key: str, mark: dict[str, Any]) -> None:
        self.db.update_item(
            TableName=self.table,
            Key={KEY: {"S": self.item_id}},
            UpdateExpression="SET marks = if_not_exists(marks, :empty)",
            ExpressionAttributeValues={":empty": {"M": {}}},
        )
        self.db.update_item(
            TableName=self.table,
            Key={KEY: {"S": self.item_id}},
            UpdateExpression="SET marks.#k = :v",
            ExpressionAttributeNames={"#k": key},
            ExpressionAttributeValues={":v": {"S": json.dumps(mark, default=str)}},
        )

    def clear(self, key: str) -> bool:
        """Remove the mark of ``key``; False if it had none."""
        if key not in self.load():
            return False
        self.db.update_item(
            TableName=self.table,
            Key={KEY: {"S": self.item_id}},
            UpdateExpression="REMOVE marks.#k",
            ExpressionAttributeNames={"#k": key},
        )
        return True
