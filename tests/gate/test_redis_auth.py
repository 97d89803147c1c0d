"""The gate reads the Redis AUTH token from Secrets Manager, so REDIS_URL in the function's config has no password."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis

from common import redis_keys
from common.aws import client
from common.settings import load_settings
from gate.limiter import redis_client
from gate.settings import GateSettings
from localplane.services import RedisServer
from tests.gate.factories import Queues, make_job
from tests.gate.test_handler import invoke, receive_from_ingress

TOKEN = "auth-token-for-tests-7c1d"


@pytest.fixture
def protected_redis(redis_factory: Callable[[], RedisServer], monkeypatch: pytest.MonkeyPatch) -> RedisServer:
    server = redis_factory()
    plain = redis.Redis.from_url(server.url)
    plain.set(redis_keys.LIMITER_EPOCH, "0")  # a new, empty Redis: its windows are known empty
    plain.config_set("requirepass", TOKEN)
    monkeypatch.setenv("REDIS_URL", server.url)  # host and port only
    return server


def test_redis_client_without_token_is_refused_by_a_protected_redis(
    queues: Queues, protected_redis: RedisServer
) -> None:
    settings = load_settings(GateSettings)
    with pytest.raises(redis.AuthenticationError):
        redis_client(settings).ping()


def test_handler_with_auth_secret_forwards_through_a_protected_redis(
    queues: Queues, protected_redis: RedisServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client("secretsmanager").create_secret(Name="redis/auth-token", SecretString=json.dumps({"token": TOKEN}))
    monkeypatch.setenv("HUNTAZE_REDIS_AUTH_SECRET_ID", "redis/auth-token")
    messages = receive_from_ingress(queues, [make_job()])
    assert invoke(queues, messages) == {"batchItemFailures": []}
    assert len(queues.drain(queues.workflows)) == 1
    assert TOKEN not in capsys.readouterr().out  # the token never reaches the logs
