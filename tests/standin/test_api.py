"""The JSON API: every endpoint with the key, without it and with a wrong one; sends land in the record."""

from __future__ import annotations

import httpx
import pytest

from standin import content
from standin.server import StandinServer

ENDPOINTS = [
    ("GET", "/api/v1/creators/alice/profile"),
    ("GET", "/api/v1/creators/alice/threads/fan-1/messages"),
    ("POST", "/api/v1/creators/alice/threads/fan-1/messages"),
    ("GET", "/api/v1/creators/alice/media"),
    ("GET", "/api/v1/media/alice-m1"),
]


def _api(server: StandinServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": server.config.api_key}, timeout=10.0)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_api_endpoint_without_valid_key_answers_401(
    standin: StandinServer, method: str, path: str, key: str | None
) -> None:
    headers = {} if key is None else {"X-API-Key": key}
    response = httpx.request(method, f"{standin.url}{path}", headers=headers, json={"text": "x"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_api_key"
    assert standin.state.messages() == []


def test_api_profile_with_key_returns_deterministic_profile(standin: StandinServer) -> None:
    with _api(standin) as api:
        response = api.get("/api/v1/creators/alice/profile")
    assert response.status_code == 200
    assert response.json() == content.profile("alice").to_json()
    assert set(response.json()) == {"creator_id", "name", "bio", "posts", "followers", "likes"}


def test_api_send_with_key_records_message_and_thread_shows_it_after_seeds(standin: StandinServer) -> None:
    with _api(standin) as api:
        sent = api.post("/api/v1/creators/alice/threads/fan-1/messages", json={"text": "hi", "client_ref": "c-1"})
        thread = api.get("/api/v1/creators/alice/threads/fan-1/messages").json()["messages"]
    assert sent.status_code == 201
    assert set(sent.json()) == {"id", "sent_at"}
    [record] = standin.state.messages()
    assert (record.id, record.channel, record.client_ref, record.text) == (sent.json()["id"], "api", "c-1", "hi")
    seeds = [m.to_json() for m in content.seed_messages("alice", "fan-1")]
    assert thread[:2] == seeds
    assert thread[2] == {"id": record.id, "sender": "creator", "text": "hi", "sent_at": sent.json()["sent_at"],
                         "client_ref": "c-1"}


def test_api_send_same_text_twice_records_two_arrivals_in_order(standin: StandinServer) -> None:
    with _api(standin) as api:
        for _ in range(2):
            api.post("/api/v1/creators/alice/threads/fan-1/messages", json={"text": "dup", "client_ref": "same"})
    records = standin.state.messages()
    assert [(r.seq, r.client_ref) for r in records] == [(1, "same"), (2, "same")]


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": 5}, {"text": "ok", "client_ref": 3}])
def test_api_send_invalid_body_answers_422_and_records_nothing(standin: StandinServer, body: object) -> None:
    with _api(standin) as api:
        response = api.post("/api/v1/creators/alice/threads/fan-1/messages", json=body)
    assert response.status_code == 422
    assert standin.state.messages() == []


def test_api_media_list_and_download_give_absolute_urls_and_bytes(standin: StandinServer) -> None:
    with _api(standin) as api:
        media = api.get("/api/v1/creators/alice/media").json()["media"]
        size = standin.config.media_size_bytes
        assert media == [
            {"id": f"alice-m{n}", "url": f"{standin.url}/api/v1/media/alice-m{n}", "size": size} for n in (1, 2, 3)
        ]
        download = api.get(media[2]["url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"] == 'attachment; filename="alice-m3.bin"'
    assert download.content == content.media_bytes("alice-m3", size)


@pytest.mark.parametrize("path", ["/api/v1/media/alice-m4", "/api/v1/creators/bad%20id/profile"])
def test_api_unknown_ids_answer_404(standin: StandinServer, path: str) -> None:
    with _api(standin) as api:
        assert api.get(path).status_code == 404
