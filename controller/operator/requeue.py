"""Per-resource requeue with exponential backoff, and parking of terminal failures (ACK's requeue semantics).

Used by `controller.operator.loop`. A temporary failure schedules *that resource* again after the error's delay,
doubled for each consecutive failure (capped, with a little jitter so replicas do not synchronise); a success
clears it. A terminal failure parks the resource with a fingerprint of its spec and of the live state it saw:
the loop keeps reading a parked resource (never writing) and unparks it when either fingerprint changes.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from typing import Any

from controller.model import ResourceKey

MAX_DELAY_S = 300.0
JITTER = 0.1


def fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Retry:
    due: float  # time.monotonic()
    failures: int
    delay: float


@dataclass(frozen=True)
class Parked:
    spec: str
    live: str
    reason: str
    error_class: str


class RequeueQueue:
    def __init__(self, max_delay_s: float = MAX_DELAY_S, jitter: float = JITTER) -> None:
        self.max_delay_s = max_delay_s
        self.jitter = jitter
        self.retries: dict[ResourceKey, Retry] = {}
        self.parked: dict[ResourceKey, Parked] = {}

    def schedule(self, key: ResourceKey, base_delay: float) -> float:
        """Requeue ``key`` after ``base_delay`` doubled per consecutive failure; returns the delay chosen."""
        previous = self.retries.get(key)
        failures = previous.failures + 1 if previous else 1
        delay = float(min(self.max_delay_s, max(base_delay, 0.5) * 2 ** (failures - 1)))
        delay *= 1 + random.uniform(-self.jitter, self.jitter)
        self.retries[key] = Retry(time.monotonic() + delay, failures, delay)
        return delay

    def succeeded(self, key: ResourceKey) -> None:
        self.retries.pop(key, None)

    def due(self) -> set[ResourceKey]:
        now = time.monotonic()
        return {k for k, r in self.retries.items() if r.due <= now}

    def next_due(self) -> float | None:
        return min((r.due for r in self.retries.values()), default=None)

    def park(self, key: ResourceKey, spec: str, live: str, reason: str, error_class: str) -> None:
        self.retries.pop(key, None)
        self.parked[key] = Parked(spec, live, reason, error_class)

    def unpark_if_changed(self, key: ResourceKey, spec: str, live: str) -> bool:
        """True (and unparked) if the spec or the live state changed since ``key`` was parked."""
        found = self.parked.get(key)
        if found is None:
            return False
        if found.spec != spec or found.live != live:
            del self.parked[key]
            return True
        return False

    def forget(self, key: ResourceKey) -> None:
        self.retries.pop(key, None)
        self.parked.pop(key, None)
