"""The HTTP API site adapter: the platform's JSON API through httpx (``HUNTAZE_ADAPTER=http``).

Built by `scraper.adapters.registry`; `scraper.runner` drives its sessions. The API key is read once from
Secrets Manager (``HUNTAZE_API_KEY_SECRET_ID``, default ``onlyfans/api-key``: a plain string or JSON
``{"api_key": ...}``) and sent as ``X-API-Key``; it is never logged. Status codes and transport errors become
`scraper.errors` types here, so the error policy is the same as for the browser adapter.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from common.contract import Job
from scraper.adapters.base import (
    ActionOutput,
    AdapterContext,
    SiteSession,
    media_ids,
    profile_creator,
    sent_with_ref,
)
from scraper.adapters.status import raise_for_status
from scraper.errors import (
    ActionTimeout,
    ConfigError,
    ScraperError,
    TargetUnreachable,
)
from scraper.results import MediaSink

API_PREFIX = "/api/v1"
def api_key_from_secret(raw: str) -> str:
    text = raw.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text).get("api_key")
        except (ValueError, AttributeError):
            value = None
        if not isinstance(value, str) or not value:
            raise ConfigError("the API key secret is JSON without a string 'api_key': fix the secret value")
        return value
    if not text:
        raise ConfigError("the API key secret is empty: put the platform's API key in it")
    return text


class HttpSession:
    def __init__(self, client: httpx.AsyncClient, creator_id: str, timeout_s: float) -> None:
        self._client = client
        self._creator = creator_id
        self._timeout = httpx.Timeout(timeout_s)

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        what = f"{method} {path}"
        try:
            response = await self._client.request(method, path, json=body, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise ActionTimeout(f"{what} timed out: {type(exc).__name__}") from None
        except httpx.ConnectError as exc:
            raise TargetUnreachable(f"{what}: cannot connect ({exc}); the request was not sent") from None
        except httpx.TransportError as exc:
            error = TargetUnreachable(f"{what}: connection failed mid-request ({type(exc).__name__})")
            error.ambiguous = True
            raise error from None
        raise_for_status(response.status_code, response.headers.get("retry-after"), what)
        return response

    def _thread_path(self, job: Job) -> str:
        return f"{API_PREFIX}/creators/{self._creator}/threads/{job.user_id}/messages"

    async def send_message(self, job: Job, client_ref: str) -> ActionOutput:
        body = {"text": job.message_content, "client_ref": client_ref}
        response = await self._call("POST", self._thread_path(job), body)
        return ActionOutput(response.status_code, {**response.json(), "client_ref": client_ref})

    async def find_sent(self, job: Job, client_ref: str) -> ActionOutput | None:
        response = await self._call("GET", self._thread_path(job))
        return sent_with_ref(list(response.json().get("messages", [])), client_ref)

    async def scrape_profile(self, job: Job) -> ActionOutput:
        response = await self._call("GET", f"{API_PREFIX}/creators/{profile_creator(job)}/profile")
        return ActionOutput(response.status_code, dict(response.json()))

    async def get_messages(self, job: Job) -> ActionOutput:
        response = await self._call("GET", self._thread_path(job))
        return ActionOutput(response.status_code, dict(response.json()))

    async def download_media(self, job: Job, sink: MediaSink) -> ActionOutput:
        for media_id in media_ids(job):
            response = await self._call("GET", f"{API_PREFIX}/media/{media_id}")
            content_type = response.headers.get("content-type", "application/octet-stream")
            await sink.put(media_id, f"{media_id}.bin", response.content, content_type)
        return ActionOutput(200, {"media": sink.stored})


class HttpAdapter:
    name = "http"

    def __init__(self, context: AdapterContext) -> None:
        self._settings = context.settings
        self._read_secret = context.read_secret
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        key = api_key_from_secret(await self._read_secret(self._settings.api_key_secret_id))
        self._client = httpx.AsyncClient(
            base_url=self._settings.site_url,
            headers={"X-API-Key": key},
            limits=httpx.Limits(max_connections=max(self._settings.concurrency * 2, 4)),
            follow_redirects=False,
        )

    @asynccontextmanager
    async def session(self, creator_id: str, timeout_s: float) -> AsyncIterator[SiteSession]:
        if self._client is None:
            raise ScraperError("the HTTP adapter was not started; call start() first")
        yield HttpSession(self._client, creator_id, timeout_s)

    def problem(self) -> str | None:
        return None if self._client is not None else "http adapter not started"

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def create(context: AdapterContext) -> HttpAdapter:
    return HttpAdapter(context)
