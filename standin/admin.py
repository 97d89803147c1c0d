"""Admin endpoints (`/__admin/...`) for tests and tools in another process than the server.

Mounted by `standin.app`. A worker under test in a subprocess cannot reach `StandinServer.state`, so its
tests set faults, reset, and read the message record and traffic counters here. Never faulted, never counted.
"""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from standin.faults import Faults
from standin.instance import Instance
from standin.traffic import ADMIN_PREFIX


class Admin:
    """Route handlers of the admin endpoints for one instance."""

    def __init__(self, instance: Instance) -> None:
        self._instance = instance

    def routes(self) -> list[BaseRoute]:
        return [
            Route(ADMIN_PREFIX + "/health", self.health, methods=["GET"]),
            Route(ADMIN_PREFIX + "/faults", self.get_faults, methods=["GET"]),
            Route(ADMIN_PREFIX + "/faults", self.set_faults, methods=["POST"]),
            Route(ADMIN_PREFIX + "/reset", self.reset, methods=["POST"]),
            Route(ADMIN_PREFIX + "/messages", self.messages, methods=["GET"]),
            Route(ADMIN_PREFIX + "/stats", self.stats, methods=["GET"]),
        ]

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self._instance.faults.faults.model_dump(mode="json"))

    async def set_faults(self, request: Request) -> Response:
        """Replace the active faults (and restart their counters) with the JSON body."""
        try:
            faults = Faults.model_validate_json(await request.body())
        except ValidationError as exc:
            errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
            return JSONResponse({"error": "invalid_faults", "detail": errors}, status_code=422)
        self._instance.faults.set(faults)
        return JSONResponse(faults.model_dump(mode="json"))

    async def reset(self, request: Request) -> Response:
        self._instance.reset()
        return JSONResponse({"ok": True})

    async def messages(self, request: Request) -> Response:
        return JSONResponse([m.to_json() for m in self._instance.store.messages()])

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self._instance.store.stats())
