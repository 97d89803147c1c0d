"""Pages that never finish loading (the `hang_creators` fault).

`standin.web` answers a hanging creator's HTML page with `HangingResponse`: status 200, the document head,
and then nothing more, so a browser's `load` (and `domcontentloaded`) never fires and `page.goto` times out.
The response waits without holding a thread; it ends when the client disconnects, when `HangRelease`
is released (the server is stopping or being reset), or after `MAX_HANG_S` as a last resort.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

MAX_HANG_S = 600.0


class HangRelease:
    """Wakes every hanging response at once; `release_all` may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._active = 0

    @property
    def active(self) -> int:
        """How many hanging responses are open right now."""
        with self._lock:
            return self._active

    @contextlib.contextmanager
    def hanging(self) -> Iterator[None]:
        with self._lock:
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1

    async def wait(self) -> None:
        with self._lock:
            self._loop = asyncio.get_running_loop()
            if self._event is None:
                self._event = asyncio.Event()
            event = self._event
        await event.wait()

    def release_all(self) -> None:
        with self._lock:
            event, loop = self._event, self._loop
            self._event = None
        if event is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # a closed loop has nothing waiting any more
            loop.call_soon_threadsafe(event.set)


class HangingResponse(Response):
    """Sends the head of a page and keeps the response open until disconnect or release."""

    def __init__(self, head: str, release: HangRelease) -> None:
        super().__init__(content=None, status_code=200, media_type="text/html")
        self._head = head.encode()
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")],
            }
        )
        await send({"type": "http.response.body", "body": self._head, "more_body": True})
        with self._release.hanging():
            released = await self._released_before_disconnect(receive)
        if released:
            await send({"type": "http.response.body", "body": b"</html>", "more_body": False})

    async def _released_before_disconnect(self, receive: Receive) -> bool:
        """Wait for the first of: client disconnect (False), release (True), `MAX_HANG_S` (True)."""

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        disconnect = asyncio.ensure_future(until_disconnect())
        release = asyncio.ensure_future(self._release.wait())
        await asyncio.wait({disconnect, release}, timeout=MAX_HANG_S, return_when=asyncio.FIRST_COMPLETED)
        client_gone = disconnect.done() and not disconnect.cancelled()
        for task in (disconnect, release):
            task.cancel()
        await asyncio.gather(disconnect, release, return_exceptions=True)
        return not client_gone
