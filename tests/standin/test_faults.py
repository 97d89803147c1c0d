"""Request-level faults (429, 5xx, latency, 4xx per creator) and the admin endpoints that set them."""

from __future__ import annotations

import random
import time

import httpx
import pytest

from standin import Error5xxFault, Faults, RateLimitFault
from standin.server import StandinServer
from standin.testing import wait_until, web_session

PROFILE = "/api/v1/creators/alice/profile"


def _api(server: StandinServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": server.config.api_key}, timeout=10.0)


def test_rate_limit_after_limit_answers_429_with_retry_after_on_api_and_pages(standin: StandinServer) -> None:
    with web_session(standin, "alice") as web, _api(standin) as api:
        standin.set_faults(Faults(rate_limit=RateLimitFault(limit=3, window_s=60, retry_after_s=7)))
        statuses = [api.get(PROFILE).status_code, web.get("/inbox").status_code, api.get(PROFILE).status_code]
        assert web.get("/favicon.ico").status_code == 204
        assert httpx.get(f"{standin.url}/__admin/stats").status_code == 200
        page, call = web.get("/u/bob"), api.get(PROFILE)
    assert statuses == [200, 200, 200]
    assert (page.status_code, page.headers["retry-after"]) == (429, "7")
    assert (call.status_code, call.headers["retry-after"]) == (429, "7")
    assert call.json()["retry_after"] == 7


def test_rate_limit_window_passed_admits_again(standin: StandinServer) -> None:
    standin.set_faults(Faults(rate_limit=RateLimitFault(limit=1, window_s=0.2, retry_after_s=1)))
    with _api(standin) as api:
        assert [api.get(PROFILE).status_code, api.get(PROFILE).status_code] == [200, 429]
        wait_until(lambda: api.get(PROFILE).status_code == 200, 5.0, "the rate-limit window to admit again")


def test_error_5xx_next_k_fails_exactly_k_requests_then_recovers(standin: StandinServer) -> None:
    standin.set_faults(Faults(error_5xx=Error5xxFault(next=2, status=502)))
    with _api(standin) as api:
        statuses = [api.get(PROFILE).status_code for _ in range(4)]
    assert statuses == [502, 502, 200, 200]


def test_error_5xx_seeded_rate_is_reproducible_and_follows_the_seed(standin: StandinServer) -> None:
    fault = Error5xxFault(rate=0.5, seed=11)
    rng = random.Random(11)
    expected = [503 if rng.random() < 0.5 else 200 for _ in range(30)]
    runs = []
    for _ in range(2):
        standin.set_faults(Faults(error_5xx=fault))
        with _api(standin) as api:
            runs.append([api.get(PROFILE).status_code for _ in range(30)])
    assert runs == [expected, expected]
    assert {200, 503} <= set(expected)


def test_latency_delays_operations_but_not_admin(standin: StandinServer) -> None:
    standin.set_faults(Faults(latency_ms=300))
    with _api(standin) as api:
        started = time.monotonic()
        assert api.get(PROFILE).status_code == 200
        elapsed = time.monotonic() - started
    assert elapsed >= 0.25  # sanity only: the figure itself belongs in a benchmark


def test_fail_creator_answers_its_4xx_everywhere_about_that_creator(standin: StandinServer) -> None:
    with web_session(standin, "bob") as bob, _api(standin) as api:
        standin.set_faults(Faults(fail_creators={"alice": 403, "carol": 404}))
        assert bob.get("/u/alice").status_code == 403
        assert api.get(PROFILE).status_code == 403
        assert api.get("/api/v1/media/alice-m1").status_code == 403
        assert api.post("/api/v1/creators/carol/threads/f/messages", json={"text": "x"}).status_code == 404
        assert bob.get("/u/bob").status_code == 200
        assert api.get("/api/v1/creators/bob/profile").status_code == 200
        login = httpx.post(f"{standin.url}/login", data={"username": "alice", "password": standin.config.password})
    assert login.status_code == 403
    assert standin.state.messages() == []


def test_fail_creator_logged_in_session_pages_answer_its_4xx(standin: StandinServer) -> None:
    with web_session(standin, "alice") as alice:
        standin.set_faults(Faults(fail_creators={"alice": 404}))
        assert alice.get("/inbox").status_code == 404
        assert alice.post("/web/threads/f/messages", json={"text": "x"}).status_code == 404
    assert standin.state.messages() == []


def test_admin_faults_post_replaces_faults_and_admin_is_never_faulted(standin: StandinServer) -> None:
    with httpx.Client(base_url=standin.url) as admin:
        response = admin.post("/__admin/faults", json={"rate_limit": {"limit": 0, "window_s": 60}, "latency_ms": 0})
        assert response.status_code == 200
        assert standin.faults.rate_limit == RateLimitFault(limit=0, window_s=60)
        assert admin.get("/__admin/stats").status_code == 200
        assert admin.get(PROFILE, headers={"X-API-Key": standin.config.api_key}).status_code == 429
        assert admin.post("/__admin/faults", json={"latency_ms": 5}).status_code == 200
    assert standin.faults == Faults(latency_ms=5)


@pytest.mark.parametrize(
    "body", [{"rate_limit": {"limit": -1, "window_s": 1}}, {"fail_creators": {"a": 500}}, {"typo": 1}]
)
def test_admin_faults_invalid_body_answers_422_and_keeps_faults(standin: StandinServer, body: object) -> None:
    response = httpx.post(f"{standin.url}/__admin/faults", json=body)
    assert response.status_code == 422
    assert standin.faults == Faults()


def test_admin_messages_stats_and_reset_report_and_clear_state(standin: StandinServer) -> None:
    with _api(standin) as api:
        api.post("/api/v1/creators/alice/threads/f1/messages", json={"text": "one", "client_ref": "r1"})
        api.post("/api/v1/creators/bob/threads/f2/messages", json={"text": "two"})
        api.get("/api/v1/creators/alice/profile", headers={"X-API-Key": "nope"})
        messages = api.get("/__admin/messages").json()
        stats = api.get("/__admin/stats").json()
        standin.set_faults(Faults(latency_ms=1))
        assert api.post("/__admin/reset").status_code == 200
        after = (api.get("/__admin/messages").json(), api.get("/__admin/stats").json())
    assert [(m["seq"], m["creator_id"], m["user_id"], m["text"], m["client_ref"], m["channel"]) for m in messages] == [
        (1, "alice", "f1", "one", "r1", "api"),
        (2, "bob", "f2", "two", None, "api"),
    ]
    assert messages[0]["received_at"].endswith("Z")
    assert stats["total"] == 3
    assert stats["by_status"] == {"201": 2, "401": 1}
    assert stats["by_route"]["POST /api/v1/creators/{creator_id}/threads/{user_id}/messages"] == {"201": 2}
    assert after == ([], {"total": 0, "by_status": {}, "by_route": {}})
    assert standin.faults == Faults()
