"""The HTTP health endpoint for the ECS container health check (``GET /health``).

Started by `scraper.worker` on ``HUNTAZE_HEALTH_HOST:HUNTAZE_HEALTH_PORT``. Answers 200 ``{"status": "ok"}``
(with ``warnings`` when something needs attention without making the task unhealthy: memory that stays high
after a browser recycle; ``stats``: the worker's counters, jobs finished and browser contexts opened and
reused) or 503 with the reasons: the site adapter cannot work (e.g. the browser cannot launch),
the receive loop has not ticked for ``HUNTAZE_STUCK_AFTER_S``, or a job has run ``HUNTAZE_STUCK_AFTER_S``
past its deadline.
It is a bare asyncio server on the worker's own loop: if that loop is blocked, the check times out, which ECS
also counts as unhealthy. The container's check command is ``python -m scraper.healthcheck``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable


class HealthServer:
    def __init__(self, host: str, port: int, problems: Callable[[], list[str]],
                 warnings: Callable[[], list[str]] = list,
                 stats: Callable[[], dict[str, int]] | None = None) -> None:
        self._host = host
        self._stats = stats
        self._port = port
        self._problems = problems
        self._warnings = warnings
        self._server: asyncio.Server | None = None
        self.port = port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request_line.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            payload: dict[str, object]
            if path.split("?")[0] not in ("/health", "/"):
                status, payload = "404 Not Found", {"error": "try GET /health"}
            else:
                problems = self._problems()
                status = "200 OK" if not problems else "503 Service Unavailable"
                payload = {"status": "ok" if not problems else "unhealthy", "problems": problems}
                warnings = self._warnings()
                if warnings:
                    payload["warnings"] = warnings
                if self._stats is not None:
                    payload["stats"] = self._stats()
            body = json.dumps(payload).encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
