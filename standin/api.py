"""The JSON API of the stand-in platform (`/api/v1`, header `X-API-Key`).

Mounted by `standin.app`; the scraper's API adapter calls it with httpx. Same content as the HTML site
(`standin.content`) and the same message record (`standin.store`, channel "api"). Renderer-crash and hang
faults never apply here; request-level faults do (see `standin.faults`).
"""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from standin import content
from standin.instance import BadRequestError, Instance, parse_send
from standin.web import media_response

API_PREFIX = "/api/v1"
API_KEY_HEADER = "X-API-Key"


def _error(status: int, error: str, detail: str | None = None) -> JSONResponse:
    payload = {"error": error} if detail is None else {"error": error, "detail": detail}
    return JSONResponse(payload, status_code=status)


class Api:
    """Route handlers of the JSON API for one instance."""

    def __init__(self, instance: Instance) -> None:
        self._instance = instance
        self._config = instance.config

    def routes(self) -> list[BaseRoute]:
        creator = API_PREFIX + "/creators/{creator_id}"
        return [
            Route(creator + "/profile", self.profile, methods=["GET"]),
            Route(creator + "/threads/{user_id}/messages", self.messages, methods=["GET"]),
            Route(creator + "/threads/{user_id}/messages", self.send, methods=["POST"]),
            Route(creator + "/media", self.media, methods=["GET"]),
            Route(API_PREFIX + "/media/{media_id}", self.download, methods=["GET"]),
        ]

    def _refusal(self, request: Request) -> JSONResponse | None:
        """401 unless the key is right; 404 for ids that cannot exist."""
        key = request.headers.get(API_KEY_HEADER, "")
        if not secrets.compare_digest(key.encode(), self._config.api_key.encode()):
            return _error(401, "invalid_api_key", f"send header {API_KEY_HEADER}")
        for name in ("creator_id", "user_id"):
            value = request.path_params.get(name)
            if value is not None and not content.is_creator_id(value):
                return _error(404, f"no_such_{name.removesuffix('_id')}")
        return None

    async def profile(self, request: Request) -> Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        return JSONResponse(content.profile(request.path_params["creator_id"]).to_json())

    async def messages(self, request: Request) -> Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        creator_id, user_id = request.path_params["creator_id"], request.path_params["user_id"]
        thread = content.seed_messages(creator_id, user_id)
        thread += [m.as_thread_message() for m in self._instance.store.thread(creator_id, user_id)]
        return JSONResponse({"messages": [m.to_json() for m in thread]})

    async def send(self, request: Request) -> Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        try:
            body = await parse_send(request)
        except BadRequestError as exc:
            return _error(422, "bad_request", exc.detail)
        creator_id, user_id = request.path_params["creator_id"], request.path_params["user_id"]
        record = self._instance.store.record_message(creator_id, user_id, body.text, body.client_ref, "api")
        return JSONResponse({"id": record.id, "sent_at": content.iso(record.received_at)}, status_code=201)

    async def media(self, request: Request) -> Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        base = str(request.base_url).rstrip("/")
        ids = content.media_ids(request.path_params["creator_id"], self._config.media_per_creator)
        size = self._config.media_size_bytes
        return JSONResponse({"media": [{"id": m, "url": f"{base}{API_PREFIX}/media/{m}", "size": size} for m in ids]})

    async def download(self, request: Request) -> Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        media_id = request.path_params["media_id"]
        if content.media_owner(media_id, self._config.media_per_creator) is None:
            return _error(404, "no_such_media")
        return media_response(media_id, self._config.media_size_bytes)
