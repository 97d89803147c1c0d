"""The site adapter interface: one method per action, behind a login/session step.

`scraper.runner` opens a session for one attempt of one job (``async with adapter.session(creator, timeout)``)
and calls the action's method on it. Implementations: `scraper.adapters.browser` (Playwright through the UI)
and `scraper.adapters.http` (the platform's JSON API with httpx); third parties plug in through the
``huntaze.site_adapters`` entry-point group (see `scraper.adapters.registry`).

Adapters raise only `scraper.errors` types, so the error policy never sees a transport's exceptions.
A job's URLs (profile_url, media_urls) are used for their *path* only, resolved against the configured site:
a job can never point the worker at another host.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from common.contract import Job
from scraper.errors import TargetClientError
from scraper.results import MediaSink
from scraper.settings import ScraperSettings


@dataclass(frozen=True)
class ActionOutput:
    """What an action returns: the target's status code and the data stored in the result's ``response``."""

    status_code: int
    data: dict[str, Any] = field(default_factory=dict)


class SiteSession(Protocol):
    """One logged-in session of one creator, for one attempt of one job."""

    async def send_message(self, job: Job, client_ref: str) -> ActionOutput: ...

    async def find_sent(self, job: Job, client_ref: str) -> ActionOutput | None:
        """The creator's message in `job`'s thread that was sent with `client_ref`, else None.

        Called after an interrupted send, before sending again. The match must be exact (by the reference the
        send carried), never by text: the creator may really have sent the same text twice. An adapter for a
        platform that shows no reference and has no other exact way must raise `OutcomeUnknown`, so the job
        ends in the DLQ with that reason instead of being resent blindly.
        """
        ...

    async def scrape_profile(self, job: Job) -> ActionOutput: ...

    async def download_media(self, job: Job, sink: MediaSink) -> ActionOutput: ...

    async def get_messages(self, job: Job) -> ActionOutput: ...


class SiteAdapter(Protocol):
    name: str

    async def start(self) -> None:
        """Prepare shared resources (browser, HTTP client, secrets). Raises `ConfigError` if it cannot."""
        ...

    def session(self, creator_id: str, timeout_s: float) -> AbstractAsyncContextManager[SiteSession]: ...

    def problem(self) -> str | None:
        """Why the adapter cannot work right now (for the health check), or None."""
        ...

    async def aclose(self) -> None: ...


SecretReader = Callable[[str], Awaitable[str]]


@dataclass(frozen=True)
class AdapterContext:
    """What a factory gets to build an adapter: settings and a Secrets Manager reader."""

    settings: ScraperSettings
    read_secret: SecretReader


AdapterFactory = Callable[[AdapterContext], SiteAdapter]


def sent_with_ref(messages: list[dict[str, Any]], client_ref: str) -> ActionOutput | None:
    """`find_sent`'s answer from a thread's messages (dicts with ``id``, ``sender``, ``sent_at``, ``client_ref``)."""
    for message in messages:
        if message.get("sender") == "creator" and message.get("client_ref") == client_ref:
            return ActionOutput(200, {"id": message.get("id"), "sent_at": message.get("sent_at"),
                                      "client_ref": client_ref, "verified_after_interruption": True})
    return None


def site_path(url: str) -> str:
    """The path (and query) of a job URL, to resolve against the configured site."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def profile_creator(job: Job) -> str:
    """Whose profile a scrape_profile job wants: the last segment of ``profile_url`` (``/u/{id}``)."""
    path = site_path(str(job.profile_url)) if job.profile_url else ""
    segment = path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    if not segment:
        raise TargetClientError(400, f"profile_url {job.profile_url} names no profile")
    return segment


def media_ids(job: Job) -> list[str]:
    """Media ids from ``media_urls`` (``…/media/{id}/download`` or ``…/media/{id}``)."""
    ids = []
    for url in job.media_urls or []:
        parts = [p for p in site_path(str(url)).split("?")[0].split("/") if p]
        if parts and parts[-1] == "download":
            parts = parts[:-1]
        if not parts:
            raise TargetClientError(400, f"media url {url} names no media")
        ids.append(parts[-1])
    return ids
