"""Exact duplicate detection after an interrupted send (through the real worker, moto, Redis and the stand-in).

An earlier attempt's idempotency record is left ``unknown`` (as a crash mid-send leaves it); the worker must then
look for the message carrying the job's own ``client_ref`` (rendered as ``data-client-ref`` on the thread page,
``client_ref`` in the JSON API), never for a message with the same text.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from scraper_testkit import Plane, job, run_worker

from common.contract import Job
from common.identity import message_identity
from scraper.idempotency import IdempotencyStore
from scraper.runner import client_ref


def _leave_interrupted(redis_url: str, identity: str) -> None:
    """What a worker killed mid-send leaves behind: a claimed record marked ``unknown``."""

    async def interrupt() -> None:
        redis = Redis.from_url(redis_url)
        store = IdempotencyStore(redis, "scraper-killed-mid-send")
        await store.claim(identity, lease_s=30)
        await store.mark_unknown(identity)
        await redis.aclose()

    asyncio.run(interrupt())


@pytest.mark.parametrize("adapter", ["http", "browser"])
def test_send_verify_after_interruption_matches_client_ref_not_text(
        adapter: str, plane: Plane, standin: Any, make_settings: Any, redis_url: str) -> None:
    landed: Job = job("send_message", "verifa", user="fan-1", text="same words")
    typed: Job = job("send_message", "verifb", user="fan-2", text="same words too")
    refs = {}
    for name, sent in (("landed", landed), ("typed", typed)):
        identity = message_identity(sent, f"ingress-{name}")
        refs[name] = client_ref(identity)
        _leave_interrupted(redis_url, identity)
    # The interrupted send of `landed` reached the platform; for `typed`, only the creator's own message with the
    # same text exists (sent by hand after the interrupted attempt, no reference): it must not count as ours.
    ours = standin.state.record_message("verifa", "fan-1", "same words", refs["landed"], "web")
    standin.state.record_message("verifb", "fan-2", "same words too", None, "web")
    plane.send(landed, origin="ingress-landed")
    plane.send(typed, origin="ingress-typed")

    run_worker(make_settings(adapter=adapter),
               until=lambda w: len(plane.result_keys()) == 2 and plane.counts() == (0, 0), timeout_s=90)

    sent = [(m.creator_id, m.text, m.client_ref) for m in standin.state.messages()]
    assert sent == [("verifa", "same words", refs["landed"]), ("verifb", "same words too", None),
                    ("verifb", "same words too", refs["typed"])]
    results = {plane.read_json(key)["creator_id"]: plane.read_json(key) for key in plane.result_keys()}
    assert results["verifa"]["status"] == results["verifb"]["status"] == "success"
    assert results["verifa"]["response"]["data"] == {
        "id": ours.id, "sent_at": results["verifa"]["response"]["data"]["sent_at"],
        "client_ref": refs["landed"], "verified_after_interruption": True}
    assert results["verifb"]["response"]["data"]["client_ref"] == refs["typed"]
    assert "verified_after_interruption" not in results["verifb"]["response"]["data"]
