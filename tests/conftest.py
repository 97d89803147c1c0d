"""Fixtures shared by every test: real services on free loopback ports, started and stopped here.

- `moto_server` (session): a moto server process; `aws` (per test) points the standard AWS variables at it,
  resets its state and clears cached boto3 clients.
- `redis_server` (session): a real `redis-server`; `redis_url` (per test) flushes it and exports REDIS_URL.
- `redis_factory` (per test): private Redis servers for tests that kill and restart Redis.

A missing binary is a failure that says what to install, never a skip.

A run started in the background (`cmd &` in a non-interactive shell: a CI runner, `nohup`) inherits SIGINT
ignored, and so would every child: Python starts no KeyboardInterrupt handler then, and the tests that interrupt
a child like Ctrl-C (`status --watch`, an interrupted test run) would wait in vain. `pytest_configure` gives this
process a SIGINT handler instead; exec resets a handled signal to its default in each child.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from common.aws import clear_client_cache
from localplane.services import MotoServer, RedisServer, ServiceError

TEST_REGION = "us-east-1"


def pytest_configure(config: pytest.Config) -> None:
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    try:
        server = MotoServer()
        server.start()
    except ServiceError as exc:
        pytest.fail(f"cannot start the moto server: {exc}", pytrace=False)
    yield server
    server.close()


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean moto account behind the standard AWS environment; yields the endpoint URL."""
    moto_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_REGION", TEST_REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", TEST_REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    clear_client_cache()
    yield moto_server.url
    clear_client_cache()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer()
        server.start()
    except ServiceError as exc:
        pytest.fail(f"cannot start redis-server: {exc}", pytrace=False)
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty Redis database, exported as REDIS_URL."""
    if not redis_server.running:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    return redis_server.url


@pytest.fixture
def redis_factory() -> Iterator[Callable[[], RedisServer]]:
    """Start private Redis servers (for kill/restart tests); all are stopped at the end of the test."""
    started: list[RedisServer] = []

    def make() -> RedisServer:
        try:
            server = RedisServer()
            server.start()
        except ServiceError as exc:
            pytest.fail(f"cannot start redis-server: {exc}", pytrace=False)
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A tiny Lambda package (``tinygate.handler.handler`` answers no batch item failures) for Function specs."""
    pkg = tmp_path / "tinygate"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "handler.py").write_text("def handler(event, context):\n    return {'batchItemFailures': []}\n")
    return pkg
