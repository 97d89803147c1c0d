"""Once only when Redis restarts empty (no persistence): the idempotency marks are gone, the durable records decide
(the job's result in S3, the platform's own record of a send by its client_ref). Through the real worker, moto,
a private redis-server that is SIGKILLed and restarted, and the stand-in."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from scraper_testkit import Plane, job, run_worker

from common.contract import Job
from common.identity import message_identity
from localplane.services import RedisServer
from scraper.adapters.base import ActionOutput, AdapterContext, SiteAdapter, SiteSession
from scraper.adapters.registry import load_adapter
from scraper.runner import client_ref
from scraper.secrets import SecretReader
from scraper.settings import ScraperSettings


def restart_empty(server: RedisServer) -> None:
    server.kill()  # SIGKILL, persistence off: every mark, lease and breaker key is gone
    server.start()


def test_done_send_redelivered_after_redis_restarted_empty_is_deleted_not_sent_again(
        plane: Plane, standin: Any, make_settings: Any, redis_factory: Callable[[], RedisServer]) -> None:
    redis = redis_factory()
    settings = make_settings(redis_url=redis.url)
    original = job("send_message", "lost", text="only once")
    plane.send(original, origin="ingress-lost")
    run_worker(settings, until=lambda w: plane.result_keys() != [] and plane.counts() == (0, 0))
    (key,) = plane.result_keys()
    stored = plane.read_json(key)

    restart_empty(redis)
    plane.send(original, origin="ingress-lost")  # the same job delivered again, its Redis mark gone
    worker = run_worker(settings, until=lambda w: w.jobs_finished == 1 and plane.counts() == (0, 0))

    assert [m.text for m in standin.state.messages()] == ["only once"]
    assert plane.result_keys() == [key] and plane.read_json(key) == stored
    assert plane.counts(plane.dlq_url) == (0, 0)
    assert worker.jobs_finished == 1


def test_send_that_landed_before_its_worker_died_is_verified_not_resent_after_redis_restarted_empty(
        plane: Plane, standin: Any, make_settings: Any, redis_factory: Callable[[], RedisServer]) -> None:
    redis = redis_factory()
    sent = job("send_message", "killed", text="landed before the kill")
    ref = client_ref(message_identity(sent, "ingress-killed"))
    plane.send(sent, origin="ingress-killed")
    # A first worker received it, sent it (the platform has it, with the job's client_ref) and was killed before
    # storing the result; Redis then restarted empty. The message comes back on its second receive.
    sqs = plane.sqs()
    (first,) = sqs.receive_message(QueueUrl=plane.queue_url, MaxNumberOfMessages=1)["Messages"]
    landed = standin.state.record_message("killed", "fan-1", "landed before the kill", ref, "api")
    sqs.change_message_visibility(QueueUrl=plane.queue_url, ReceiptHandle=first["ReceiptHandle"],
                                  VisibilityTimeout=0)
    restart_empty(redis)

    run_worker(make_settings(redis_url=redis.url),
               until=lambda w: plane.result_keys() != [] and plane.counts() == (0, 0))

    assert [(m.text, m.client_ref) for m in standin.state.messages()] == [("landed before the kill", ref)]
    (key,) = plane.result_keys()
    result = plane.read_json(key)
    assert result["status"] == "success"
    assert result["response"]["data"]["id"] == landed.id
    assert result["response"]["data"]["verified_after_interruption"] is True
    assert plane.counts(plane.dlq_url) == (0, 0)


class RedisDiesAfterSend:
    """The real HTTP adapter; right after its first send reaches the platform, Redis is SIGKILLed (and, with
    `then_fail`, the attempt then fails without an answer, as a crash after the click would)."""

    name = "http"

    def __init__(self, inner: SiteAdapter, redis: RedisServer, then_fail: bool) -> None:
        self.inner = inner
        self.redis = redis
        self.then_fail = then_fail
        self.sends = 0

    async def start(self) -> None:
        await self.inner.start()

    def problem(self) -> str | None:
        return self.inner.problem()

    async def aclose(self) -> None:
        await self.inner.aclose()

    @contextlib.asynccontextmanager
    async def session(self, creator_id: str, timeout_s: float) -> AsyncIterator[SiteSession]:
        async with self.inner.session(creator_id, timeout_s) as session:
            yield HookedSession(session, self)


class HookedSession:
    def __init__(self, inner: SiteSession, hook: RedisDiesAfterSend) -> None:
        self._inner = inner
        self._hook = hook

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def send_message(self, job: Job, client_ref: str) -> ActionOutput:
        output = await self._inner.send_message(job, client_ref)
        self._hook.sends += 1
        if self._hook.sends == 1:
            self._hook.redis.kill()
            if self._hook.then_fail:
                raise RuntimeError("the page went away after the send was submitted")
        return output


@pytest.mark.parametrize("then_fail", [False, True], ids=["answered", "no-answer"])
def test_held_send_whose_redis_mark_was_lost_mid_job_is_not_sent_again_after_redis_restarts_empty(
        then_fail: bool, plane: Plane, standin: Any, make_settings: Any,
        redis_factory: Callable[[], RedisServer]) -> None:
    redis = redis_factory()
    settings: ScraperSettings = make_settings(redis_url=redis.url)
    adapter = RedisDiesAfterSend(load_adapter("http", AdapterContext(settings, SecretReader())), redis, then_fail)
    plane.send(job("send_message", "midjob", text="sent while redis died"), origin="ingress-midjob")

    def restart_once_the_job_waits(worker: Any) -> None:
        # The send landed, Redis died before the job's outcome was marked there: the worker holds the message and
        # will run it again. Redis comes back with nothing in it.
        if not redis.running and worker.jobs_waiting >= 1:
            redis.start()

    run_worker(settings, adapter=adapter, on_tick=restart_once_the_job_waits, timeout_s=60,
               until=lambda w: redis.running and plane.result_keys() != [] and plane.counts() == (0, 0)
               and w.jobs_finished == 1)

    assert adapter.sends == 1
    assert [m.text for m in standin.state.messages()] == ["sent while redis died"]
    (key,) = plane.result_keys()
    assert plane.read_json(key)["status"] == "success"
    assert plane.counts(plane.dlq_url) == (0, 0)
