"""Settings: clear errors naming the variable; secrets never echoed."""

from __future__ import annotations

import pytest
from pydantic import Field, SecretStr

from common.settings import HuntazeSettings, SettingsError, load_settings


class DemoSettings(HuntazeSettings):
    workflows_queue_url: str = Field(min_length=1)
    concurrency: int = 2
    api_token: SecretStr = SecretStr("")


def test_load_settings_reads_standard_aws_and_redis_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@127.0.0.1:6380/1")
    monkeypatch.setenv("HUNTAZE_WORKFLOWS_QUEUE_URL", "http://q")
    got = load_settings(DemoSettings)
    assert got.aws_endpoint_url == "http://127.0.0.1:5000"
    assert got.aws_region == "eu-west-1"
    assert got.redis_url.get_secret_value().endswith(":6380/1")
    assert "hunter2" not in repr(got)


def test_load_settings_missing_required_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUNTAZE_WORKFLOWS_QUEUE_URL", raising=False)
    with pytest.raises(SettingsError, match="HUNTAZE_WORKFLOWS_QUEUE_URL: required setting is not set"):
        load_settings(DemoSettings)


def test_load_settings_malformed_value_names_variable_and_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUNTAZE_WORKFLOWS_QUEUE_URL", "http://q")
    monkeypatch.setenv("HUNTAZE_CONCURRENCY", "lots")
    with pytest.raises(SettingsError, match=r"HUNTAZE_CONCURRENCY: .*integer.*'lots'"):
        load_settings(DemoSettings)


def test_load_settings_malformed_secret_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUNTAZE_WORKFLOWS_QUEUE_URL", "http://q")
    monkeypatch.setenv("AWS_REGION", "not a region")
    with pytest.raises(SettingsError) as info:
        load_settings(DemoSettings, api_token=12345)
    text = str(info.value)
    assert "AWS_REGION" in text
    assert "HUNTAZE_API_TOKEN" in text
    assert "12345" not in text
