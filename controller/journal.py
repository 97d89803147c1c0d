"""The reconcile journal: one record per resource per cycle where something happened, plus one per cycle.

Written by the operator loop (`controller.operator.loop`) and read by `huntazectl history` and `huntazectl status`
(issue 11). Two sinks carry the same JSON lines: a local JSON-lines file with size rotation (always, when a path is
given) and a CloudWatch Logs group that is itself a spec (`manifests/controller.yaml`, LogGroup
``controller-journal``: ``/huntaze/${ENV}/controller-journal``). A record is one JSON object per line; `JournalRecord`
is the schema, so readers parse with ``JournalRecord.model_validate_json(line)``.

Secret values never appear: every value passes through `redact()` (credentials inside URLs are masked, and the
values of fields named like secrets are replaced) before it is stored, and errors are redacted the same way.
A line is written with a single ``os.write`` on an ``O_APPEND`` descriptor, so a process killed at any moment never
leaves half a record.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from controller.redact import MASK
from controller.redact import redact as redact_value

RecordType = Literal["resource", "cycle", "lease", "guard", "spec"]
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_BACKUPS = 3


class FieldChange(BaseModel):
    """One field of a resource: what the spec wants, what was live before the cycle's write, and after."""

    model_config = ConfigDict(extra="ignore")

    field: str
    desired: Any = None
    live_before: Any = None
    live_after: Any = None


class JournalRecord(BaseModel):
    """One journal line. ``type`` says which fields are meaningful:

    - ``resource``: ``resource``, ``action`` (created, updated, unchanged, drifted, failed, skipped, paused,
      observed...), ``changes``, ``verdicts`` (drift, corrected, observed, requeued, terminal, non-converging...),
      ``error`` and ``error_class`` (temporary, terminal, not_found), ``retry_in_s``.
    - ``cycle``: the summary; ``counts`` (resources, drifted, written, errors, non_converging, requeued, paused).
    - ``lease``: gained or lost the leader lease (``action`` = gained, lost, released, standby).
    - ``guard``: a resource marked non-converging (``guard`` holds field, values, count and flip times) or resumed.
    - ``spec``: the specs were reloaded, or failed to load (``error``).
    """

    model_config = ConfigDict(extra="ignore")

    type: RecordType
    cycle_id: str
    time: datetime
    stack: str = ""
    mode: str = ""  # enforce | observe (the controller's), or the resource's effective mode
    resource: str | None = None  # KIND/NAME
    action: str = ""
    changes: list[FieldChange] = Field(default_factory=list)
    verdicts: list[str] = Field(default_factory=list)
    duration_s: float = 0.0
    api_calls: int = 0
    write_calls: int = 0
    error: str | None = None
    error_class: str | None = None
    retry_in_s: float | None = None
    lease_holder: str | None = None
    fencing: int | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    guard: dict[str, Any] | None = None
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def drifted(self) -> bool:
        return "drift" in self.verdicts


def now() -> datetime:
    return datetime.now(UTC)


def redact(value: Any) -> Any:
    """``value`` with credentials in URLs masked (the whole userinfo) and secret-named fields replaced, recursively:
    `controller.redact.redact`, the one masking function of every output."""
    return redact_value(value, keep_user=False)


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    out = str(redact(text))
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, MASK)
    return out


class JsonLinesFile:
    """Append-only JSON-lines file rotated by size (``path``, ``path.1`` ... ``path.N``)."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, line: str) -> None:
        data = (line.rstrip("\n") + "\n").encode()
        with self._lock:
            self._rotate_if_needed(len(data))
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, data)  # one syscall: a killed process never leaves half a line
            finally:
                os.close(fd)

    def _rotate_if_needed(self, incoming: int) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size + incoming <= self.max_bytes:
            return
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def files(self) -> list[Path]:
        """Oldest first: ``path.N`` ... ``path.1``, ``path``."""
        rotated = [self.path.with_name(f"{self.path.name}.{i}") for i in range(self.backups, 0, -1)]
        return [p for p in [*rotated, self.path] if p.exists()]


def read_file_records(path: Path, backups: int = DEFAULT_BACKUPS) -> list[JournalRecord]:
    """Every record in the local journal and its rotated files, oldest first (unparseable lines are skipped)."""
    records: list[JournalRecord] = []
    for file in JsonLinesFile(path, backups=backups).files():
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                with contextlib.suppress(ValueError):
                    records.append(JournalRecord.model_validate_json(line))
    return records


class Journal:
    """Where the operator writes records: the local file and (when given) a CloudWatch Logs group.

    CloudWatch records are buffered and sent by `flush()` once per cycle (one PutLogEvents call); a failure to
    send is reported once on stderr and retried with the next flush, never fatal for the loop.
    """

    def __init__(
        self,
        file: JsonLinesFile | None,
        log_group: str | None = None,
        log_stream: str = "controller",
        logs_client: Any = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.file = file
        self.log_group = log_group
        self.log_stream = log_stream
        self.logs = logs_client
        self.secrets = secrets
        self._pending: list[dict[str, Any]] = []
        self._stream_ready = False
        self._warned = False
        self.records_written = 0

    def write(self, record: JournalRecord) -> None:
        data = redact(record.model_dump(mode="json"))
        line = redact_text(json.dumps(data, separators=(",", ":"), default=str), self.secrets)
        if self.file is not None:
            self.file.write(line)
        self.records_written += 1
        if self.log_group and self.logs is not None:
            self._pending.append({"timestamp": int(record.time.timestamp() * 1000), "message": line})

    def flush(self) -> None:
        if not self._pending or self.logs is None or not self.log_group:
            return
        try:
            if not self._stream_ready:
                try:
                    self.logs.create_log_stream(logGroupName=self.log_group, logStreamName=self.log_stream)
                except Exception as exc:
                    if "ResourceAlreadyExists" not in type(exc).__name__ and "AlreadyExists" not in str(exc):
                        raise
                self._stream_ready = True
            events = sorted(self._pending, key=lambda e: e["timestamp"])
            for start in range(0, len(events), 1000):
                self.logs.put_log_events(
                    logGroupName=self.log_group, logStreamName=self.log_stream, logEvents=events[start:start + 1000]
                )
            self._pending.clear()
        except Exception as exc:
            if not self._warned:
                import sys

                print(f"journal: cannot write to log group {self.log_group}: {type(exc).__name__}: {exc} "
                      "(records stay in the local file; retrying at the next cycle)", file=sys.stderr)
                self._warned = True
            del self._pending[:-10000]


def read_log_group_records(logs_client: Any, log_group: str, since: datetime) -> list[JournalRecord]:
    """Records from the CloudWatch Logs group since ``since``, oldest first."""
    records: list[JournalRecord] = []
    kwargs: dict[str, Any] = {"logGroupName": log_group, "startTime": int(since.timestamp() * 1000)}
    for page in logs_client.get_paginator("filter_log_events").paginate(**kwargs):
        for event in page.get("events", []):
            with contextlib.suppress(ValueError):
                records.append(JournalRecord.model_validate_json(event["message"]))
    records.sort(key=lambda r: r.time)
    return records
