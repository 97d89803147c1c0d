"""Structured logging: one JSON object per line, the shape CloudWatch Logs Insights queries expect.

Every program calls `configure_logging(service)` once at start, then logs through the standard `logging` module.
Context such as creator_id, message_id and action is bound for a block with `bind(...)` (a contextvar, so it is
safe across threads and asyncio tasks) and appears on every line logged inside it. Keys that look like secrets
are masked, whatever their value.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("huntaze_log_context", default=_EMPTY)
_SECRET_MARKERS = ("password", "secret", "token", "api_key", "apikey", "authorization", "cookie", "redis_url")
_STD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "taskName"}
MASK = "***"


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def redact(value: Any, key: str = "") -> Any:
    """Mask values under secret-looking keys, recursively through dicts and lists."""
    if key and is_secret_key(key):
        return MASK
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "message": record.getMessage(),
            "service": self.service,
            "logger": record.name,
        }
        entry.update(_context.get())
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(redact(entry), default=str, separators=(",", ":"))


def configure_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record of this process to `stream` (stdout by default) as one JSON line."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


@contextlib.contextmanager
def bind(**context: Any) -> Iterator[None]:
    """Add fields to every line logged inside the block (nested binds merge)."""
    token = _context.set({**_context.get(), **context})
    try:
        yield
    finally:
        _context.reset(token)


def bound_context() -> Mapping[str, Any]:
    return _context.get()
