"""The job-end log line: the shape the seed's CloudWatch Logs Insights queries read.

Called by `scraper.runner` (a job ended with a stored result) and `scraper.worker` (a job went to the DLQ), so
every job ends with exactly one such line. It carries ``status`` (``success`` / ``failure``), ``duration_ms``,
and, from the bound log context, ``creator_id`` and ``action``; a failure carries ``error`` as a nested object
``{"type": ..., "message": ...}``, which Logs Insights reads as ``error.type`` / ``error.message``. The seed's
"Scraping Performance" and "Error Analysis" queries filter on exactly these fields.
"""

from __future__ import annotations

import logging
from typing import Any

ERROR_MESSAGE_LIMIT = 500


def job_ended(log: logging.Logger, message: str, status: str, duration_ms: float, *, error_type: str = "",
              error_message: str = "", **extra: Any) -> None:
    fields: dict[str, Any] = {"status": status, "duration_ms": int(duration_ms), **extra}
    if status != "success":
        fields["error"] = {"type": error_type or "unknown", "message": error_message[:ERROR_MESSAGE_LIMIT]}
    log.log(logging.INFO if status == "success" else logging.WARNING, message, extra=fields)
