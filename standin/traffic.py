"""Which requests are "operations", and the per-route traffic counters.

Used by `standin.faults` (only operations are faulted) and by `standin.app`, which installs `StatsMiddleware`
so that `GET /__admin/stats` can tell a test how many requests the worker made and how they were answered.
Admin endpoints and static assets (the favicon Chromium fetches on its own) are not operations: they are
never faulted, never rate-limited and never counted.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from standin.store import Store

ADMIN_PREFIX = "/__admin"
STATIC_PATHS = frozenset({"/favicon.ico", "/robots.txt"})

RouteNamer = Callable[[Scope], str]


def is_operation(scope: Scope) -> bool:
    """True for HTTP requests that a worker makes on purpose (pages, form posts, API calls)."""
    if scope["type"] != "http":
        return False
    path: str = scope["path"]
    return not (path.startswith(ADMIN_PREFIX) or path in STATIC_PATHS or path.startswith("/static/"))


class StatsMiddleware:
    """Counts every operation by route template and final status code, faulted answers included."""

    def __init__(self, app: ASGIApp, store: Store, route_name: RouteNamer) -> None:
        self._app = app
        self._store = store
        self._route_name = route_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_operation(scope):
            await self._app(scope, receive, send)
            return
        route = self._route_name(scope)

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._store.count_request(route, int(message["status"]))
            await send(message)

        await self._app(scope, receive, counting_send)
