"""The HTML site: login, profiles, inbox and thread pages with the send form, media downloads.

Mounted by `standin.app`. The scraper drives these routes with real Chromium. Pages behind a session
redirect (303) to `/login?next=...`. A `crash_creators` page carries the renderer-crash script and a
`hang_creators` page never finishes (see `standin.hang`); which creator a page is "about" is the profile's
creator for `/u/{creator_id}` and the logged-in creator for everything else.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from standin import content, pages
from standin.hang import HangingResponse
from standin.instance import BadRequestError, Instance, parse_send

SESSION_COOKIE = "sid"
HOME = "/inbox"


def session_creator(instance: Instance, request: Request) -> str | None:
    """The creator logged in on this request's session, if any."""
    return instance.store.session_creator(request.cookies.get(SESSION_COOKIE))


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//"):
        return value
    return HOME


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


class WebSite:
    """Route handlers of the HTML site for one instance."""

    def __init__(self, instance: Instance) -> None:
        self._instance = instance
        self._config = instance.config

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home, methods=["GET"]),
            Route("/favicon.ico", self.favicon, methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["GET", "POST"]),
            Route("/u/{creator_id}", self.profile, methods=["GET"]),
            Route("/inbox", self.inbox, methods=["GET"]),
            Route("/inbox/{user_id}", self.thread, methods=["GET"]),
            Route("/web/threads/{user_id}/messages", self.send, methods=["POST"]),
            Route("/media", self.media, methods=["GET"]),
            Route("/media/{media_id}/download", self.download, methods=["GET"]),
        ]

    def _page(self, about: str | None, title: str, render: Callable[[bool], str]) -> Response:
        """An HTML page about creator `about`, with that creator's page faults applied."""
        faults = self._instance.faults
        if faults.hangs(about):
            return HangingResponse(pages.head(title), self._instance.hangs)
        return HTMLResponse(render(faults.crashes(about)), headers={"Cache-Control": "no-store"})

    async def home(self, request: Request) -> Response:
        return RedirectResponse(HOME, status_code=303)

    async def favicon(self, request: Request) -> Response:
        return Response(status_code=204)

    async def login_form(self, request: Request) -> Response:
        return HTMLResponse(pages.login_page(_safe_next(request.query_params.get("next"))))

    async def login(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        username = form.get("username", [""])[0]
        password = form.get("password", [""])[0]
        next_path = _safe_next(form.get("next", [None])[0])
        valid_user = content.is_creator_id(username)
        if not (valid_user and secrets.compare_digest(password.encode(), self._config.password.encode())):
            page = pages.login_page(next_path, error="Wrong username or password.", username=username)
            return HTMLResponse(page, status_code=401)
        blocked = self._instance.faults.creator_status(username)
        if blocked is not None:
            page = pages.error_page(blocked, "This account is unavailable.")
            return HTMLResponse(page, status_code=blocked)
        response = RedirectResponse(next_path, status_code=303)
        sid = self._instance.store.create_session(username)
        response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="lax", path="/")
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def profile(self, request: Request) -> Response:
        viewer = session_creator(self._instance, request)
        if viewer is None:
            return _login_redirect(request)
        creator_id = request.path_params["creator_id"]
        if not content.is_creator_id(creator_id):
            return HTMLResponse(pages.error_page(404, "No such creator."), status_code=404)
        profile = content.profile(creator_id)
        return self._page(
            creator_id, profile.name, lambda crash: pages.profile_page(profile, viewer=viewer, crash=crash)
        )

    async def inbox(self, request: Request) -> Response:
        viewer = session_creator(self._instance, request)
        if viewer is None:
            return _login_redirect(request)
        fans = content.seed_fans(viewer)
        fans += [fan for fan in self._instance.store.correspondents(viewer) if fan not in fans]
        return self._page(viewer, "Inbox", lambda crash: pages.inbox_page(viewer, fans, crash=crash))

    async def thread(self, request: Request) -> Response:
        viewer = session_creator(self._instance, request)
        if viewer is None:
            return _login_redirect(request)
        user_id = request.path_params["user_id"]
        if not content.is_user_id(user_id):
            return HTMLResponse(pages.error_page(404, "No such fan."), status_code=404)
        messages = content.seed_messages(viewer, user_id)
        messages += [m.as_thread_message() for m in self._instance.store.thread(viewer, user_id)]
        client_ref = request.query_params.get("client_ref", "")
        return self._page(
            viewer,
            f"Chat with {user_id}",
            lambda crash: pages.thread_page(viewer, user_id, messages, client_ref=client_ref, crash=crash),
        )

    async def send(self, request: Request) -> Response:
        viewer = session_creator(self._instance, request)
        if viewer is None:
            return JSONResponse({"error": "not_logged_in"}, status_code=401)
        user_id = request.path_params["user_id"]
        if not content.is_user_id(user_id):
            return JSONResponse({"error": "no_such_user"}, status_code=404)
        try:
            body = await parse_send(request)
        except BadRequestError as exc:
            return JSONResponse({"error": "bad_request", "detail": exc.detail}, status_code=422)
        record = self._instance.store.record_message(viewer, user_id, body.text, body.client_ref, "web")
        sent_at = content.iso(record.received_at)
        return JSONResponse({"id": record.id, "sent_at": sent_at}, status_code=201)

    async def media(self, request: Request) -> Response:
        viewer = session_creator(self._instance, request)
        if viewer is None:
            return _login_redirect(request)
        size = self._config.media_size_bytes
        media = [(media_id, size) for media_id in content.media_ids(viewer, self._config.media_per_creator)]
        return self._page(viewer, "Media", lambda crash: pages.media_page(viewer, media, crash=crash))

    async def download(self, request: Request) -> Response:
        viewer = session_creator(self._instance, request)
        if viewer is None:
            return _login_redirect(request)
        media_id = request.path_params["media_id"]
        owner = content.media_owner(media_id, self._config.media_per_creator)
        if owner is None:
            return HTMLResponse(pages.error_page(404, "No such media."), status_code=404)
        if owner != viewer:
            page = pages.error_page(403, "This media belongs to another creator.")
            return HTMLResponse(page, status_code=403)
        return media_response(media_id, self._config.media_size_bytes)


def media_response(media_id: str, size: int) -> Response:
    """The bytes of one media file as an attachment (so a browser starts a download)."""
    return Response(
        content.media_bytes(media_id, size),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{media_id}.bin"'},
    )
