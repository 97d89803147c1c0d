"""Assembles the stand-in ASGI application: routes of the site, the API and admin, plus the middleware.

Called by `standin.server` (and usable by any ASGI server). Middleware order, outermost first:
`StatsMiddleware` (counts the final status, faulted answers included), then `FaultMiddleware` (latency,
429, 5xx, 4xx for a creator), then Starlette's router. The fault middleware runs before routing, so this
module also tells it which creator a request is about: the path's creator, the owner of a media id, or
the creator logged in on the session.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from standin import content
from standin.admin import Admin
from standin.api import Api
from standin.faults import CreatorResolver, FaultMiddleware
from standin.instance import Instance
from standin.traffic import StatsMiddleware
from standin.web import WebSite, session_creator

SESSION_SCOPED_PREFIXES = ("/inbox", "/media", "/web/")


class RouteTable:
    """Matches a raw ASGI scope to its route before Starlette's router does."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        self._routes = routes

    def match(self, scope: Scope) -> tuple[str, dict[str, Any]]:
        """(route name like "GET /u/{creator_id}", path params) for a request scope."""
        method = scope.get("method", "GET")
        partial: str | None = None
        for route in self._routes:
            match, child = route.matches(scope)
            path = getattr(route, "path", "?")
            if match == Match.FULL:
                return f"{method} {path}", dict(child.get("path_params", {}))
            if match == Match.PARTIAL and partial is None:
                partial = f"{method} {path}"
        return partial or f"{method} (no route)", {}

    def route_name(self, scope: Scope) -> str:
        return self.match(scope)[0]


def creator_resolver(instance: Instance, table: RouteTable) -> CreatorResolver:
    def creator_of(scope: Scope) -> str | None:
        _, params = table.match(scope)
        if "creator_id" in params:
            return str(params["creator_id"])
        if "media_id" in params:
            return content.media_owner(str(params["media_id"]), instance.config.media_per_creator)
        if str(scope["path"]).startswith(SESSION_SCOPED_PREFIXES):
            return session_creator(instance, Request(scope))
        return None

    return creator_of


def build_app(instance: Instance) -> Starlette:
    routes = WebSite(instance).routes() + Api(instance).routes() + Admin(instance).routes()
    table = RouteTable(routes)
    middleware = [
        Middleware(StatsMiddleware, store=instance.store, route_name=table.route_name),
        Middleware(FaultMiddleware, injector=instance.faults, creator_of=creator_resolver(instance, table)),
    ]
    return Starlette(routes=routes, middleware=middleware)
