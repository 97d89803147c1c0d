"""The HTML site: login, session redirects, profile, inbox, the JavaScript send form, media downloads."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import BrowserContext, expect

from standin import content
from standin.server import StandinServer
from standin.testing import login, web_session

pytestmark = pytest.mark.browser


def test_login_valid_credentials_redirects_to_inbox_with_httponly_session(standin: StandinServer) -> None:
    with httpx.Client(base_url=standin.url) as client:
        response = client.post("/login", data={"username": "alice", "password": standin.config.password})
    assert response.status_code == 303
    assert response.headers["location"] == "/inbox"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("sid=")
    assert "httponly" in cookie.lower()


@pytest.mark.parametrize(("username", "password"), [("alice", "wrong"), ("bad id!", "standin-password"), ("", "")])
def test_login_bad_credentials_answers_401_with_error(standin: StandinServer, username: str, password: str) -> None:
    response = httpx.post(f"{standin.url}/login", data={"username": username, "password": password})
    assert response.status_code == 401
    assert 'data-testid="login-error"' in response.text
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("path", ["/inbox", "/inbox/fan-1", "/u/alice", "/media", "/media/alice-m1/download"])
def test_session_page_without_session_redirects_to_login_with_next(standin: StandinServer, path: str) -> None:
    response = httpx.get(f"{standin.url}{path}")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=" + path.replace("/", "%2F")


def test_login_with_next_redirects_back_to_next(standin: StandinServer) -> None:
    form = {"username": "alice", "password": standin.config.password, "next": "/u/bob"}
    response = httpx.post(f"{standin.url}/login", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/u/bob"


def test_login_form_in_browser_lands_on_inbox_with_threads(
    standin: StandinServer, browser_context: BrowserContext
) -> None:
    page = browser_context.new_page()
    login(page, standin.url, "alice", standin.config.password)
    assert page.url == f"{standin.url}/inbox"
    links = page.locator("a[data-testid=thread-link]")
    assert links.count() == content.FANS_PER_CREATOR
    assert links.first.get_attribute("href") == f"/inbox/{content.seed_fans('alice')[0]}"


def test_login_form_in_browser_wrong_password_shows_error(
    standin: StandinServer, browser_context: BrowserContext
) -> None:
    page = browser_context.new_page()
    login(page, standin.url, "alice", "not-the-password")
    expect(page.locator("[data-testid=login-error]")).to_be_visible()
    assert browser_context.cookies() == []


def test_profile_page_any_creator_shows_deterministic_fields(
    standin: StandinServer, browser_context: BrowserContext
) -> None:
    page = browser_context.new_page()
    login(page, standin.url, "alice", standin.config.password)
    page.goto(f"{standin.url}/u/some_Creator-42")
    expected = content.profile("some_Creator-42")
    assert page.text_content("[data-testid=profile-name]") == expected.name
    assert page.text_content("[data-testid=profile-bio]") == expected.bio
    assert page.text_content("[data-testid=posts-count]") == str(expected.posts)
    assert page.text_content("[data-testid=followers-count]") == str(expected.followers)
    assert page.text_content("[data-testid=likes-count]") == str(expected.likes)


def test_thread_page_new_thread_shows_two_seed_fan_messages(standin: StandinServer) -> None:
    with web_session(standin, "alice") as client:
        html = client.get("/inbox/fan-x").text
    items = re.findall(r'<li class="message" data-testid="message" data-message-id="([^"]+)" data-sender="(\w+)"', html)
    assert [(i, s) for i, s in items] == [(m.id, "fan") for m in content.seed_messages("alice", "fan-x")]


def test_send_form_in_browser_records_one_message_and_shows_sent(
    standin: StandinServer, browser_context: BrowserContext
) -> None:
    page = browser_context.new_page()
    login(page, standin.url, "alice", standin.config.password)
    page.goto(f"{standin.url}/inbox/fan-7?client_ref=ref-123")
    page.fill("textarea#message-input", "Hello from the test")
    page.click("button#send-button")
    status = page.locator("[data-testid=send-status]")
    expect(status).to_have_text("sent")

    records = standin.state.messages()
    assert len(records) == 1
    record = records[0]
    assert (record.creator_id, record.user_id, record.text) == ("alice", "fan-7", "Hello from the test")
    assert (record.client_ref, record.channel, record.seq) == ("ref-123", "web", 1)
    assert status.get_attribute("data-message-id") == record.id
    appended = page.locator(f"[data-testid=message][data-message-id='{record.id}']")
    assert appended.get_attribute("data-sender") == "creator"

    page.reload()
    messages = page.locator("[data-testid=message]")
    assert messages.count() == content.SEED_MESSAGES_PER_THREAD + 1
    assert messages.last.text_content() == "Hello from the test"


def test_send_form_rate_limited_shows_error_with_status_and_retry_after(
    standin: StandinServer, browser_context: BrowserContext
) -> None:
    from standin import Faults, RateLimitFault

    page = browser_context.new_page()
    login(page, standin.url, "alice", standin.config.password)
    page.goto(f"{standin.url}/inbox/fan-7")
    standin.set_faults(Faults(rate_limit=RateLimitFault(limit=0, window_s=60, retry_after_s=9)))
    page.fill("textarea#message-input", "too soon")
    page.click("button#send-button")
    status = page.locator("[data-testid=send-status]")
    expect(status).to_have_text("error")
    assert status.get_attribute("data-status") == "429"
    assert status.get_attribute("data-retry-after") == "9"
    assert standin.state.messages() == []


def test_send_form_html_has_no_plain_post_so_javascript_is_required(standin: StandinServer) -> None:
    with web_session(standin, "alice") as client:
        html = client.get("/inbox/fan-7").text
        plain_post = client.post("/inbox/fan-7", data={"text": "no js"})
    form_tag = re.search(r"<form id=\"send-form\"[^>]*>", html)
    assert form_tag is not None
    assert "action=" not in form_tag.group(0)
    assert "method=" not in form_tag.group(0)
    textarea = re.search(r"<textarea[^>]*>", html)
    assert textarea is not None and "name=" not in textarea.group(0)
    assert plain_post.status_code == 405
    assert standin.state.messages() == []


def test_web_send_endpoint_without_session_answers_401(standin: StandinServer) -> None:
    response = httpx.post(f"{standin.url}/web/threads/fan-7/messages", json={"text": "x"})
    assert response.status_code == 401
    assert standin.state.messages() == []


def test_media_download_in_browser_gives_deterministic_bytes(
    standin: StandinServer, browser_context: BrowserContext
) -> None:
    page = browser_context.new_page()
    login(page, standin.url, "alice", standin.config.password)
    page.goto(f"{standin.url}/media")
    links = page.locator("a[data-testid=media-link]")
    assert links.count() == standin.config.media_per_creator
    assert links.nth(1).get_attribute("href") == "/media/alice-m2/download"
    with page.expect_download() as download_info:
        page.click("a[data-media-id='alice-m2']")
    download = download_info.value
    assert download.suggested_filename == "alice-m2.bin"
    data = download.path().read_bytes()
    assert len(data) == standin.config.media_size_bytes
    assert data == content.media_bytes("alice-m2", standin.config.media_size_bytes)


@pytest.mark.parametrize(("media_id", "status"), [("bob-m1", 403), ("alice-m99", 404), ("nonsense", 404)])
def test_media_download_not_own_media_is_refused(standin: StandinServer, media_id: str, status: int) -> None:
    with web_session(standin, "alice") as client:
        response = client.get(f"/media/{media_id}/download")
    assert response.status_code == status
