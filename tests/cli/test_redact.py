"""`controller.redact`: credentials inside URLs and secret-named values never survive, names of secrets do."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from controller.redact import MASK, is_secret_key, mask_text, redact

_PASSWORD_CHARS = string.ascii_letters + string.digits + "-_.~!$&()*+,;=%"
passwords = st.text(_PASSWORD_CHARS, min_size=1, max_size=40).map(lambda s: f"pw{s}")
schemes = st.sampled_from(["redis", "rediss", "https", "http", "postgres", "amqp"])


@given(scheme=schemes, user=st.sampled_from(["", "default", "app"]), password=passwords,
       tail=st.sampled_from(["host:6379/0", "h.example.com/path?q=1", "10.0.0.1"]))
def test_mask_text_url_with_password_never_shows_password(scheme: str, user: str, password: str, tail: str) -> None:
    url = f"{scheme}://{user}:{password}@{tail}"
    masked = mask_text(f"before {url} after")
    assert password not in masked
    assert f"{scheme}://{user}:{MASK}@{tail}" in masked


@given(password=passwords)
def test_redact_nested_environment_never_shows_password(password: str) -> None:
    value = {"environment": [{"name": "REDIS_URL", "value": f"rediss://:{password}@cache:6379/0"},
                             {"name": "REDIS_AUTH_TOKEN", "value": password}],
             "variables": {"HUNTAZE_API_PASSWORD": password, "apiKey": password}}
    assert password not in repr(redact(value))


def test_mask_text_lone_token_userinfo_masked() -> None:
    assert mask_text("redis://tok3n@h:6379") == f"redis://{MASK}@h:6379"


def test_mask_text_url_without_credentials_unchanged() -> None:
    text = "redis://127.0.0.1:6379/0 and user@example.com and arn:aws:sqs:us-east-1:1:q"
    assert mask_text(text) == text


def test_is_secret_key_names_of_secrets_are_not_secret() -> None:
    for key in ("HUNTAZE_REDIS_AUTH_SECRET_ID", "secretArn", "valueFrom", "HUNTAZE_API_KEY_SECRET_ID",
                "REDIS_URL", "name", "secretName", "AWS_ACCESS_KEY_ID"):
        assert not is_secret_key(key), key
    for key in ("password", "REDIS_AUTH_TOKEN", "apiKey", "AWS_SECRET_ACCESS_KEY", "SecretString", "token"):
        assert is_secret_key(key), key


def test_redact_keeps_non_secret_values_and_types() -> None:
    value = {"visibilityTimeout": 180, "tags": {"huntaze.io/stack": "s"}, "list": [1, "a", None, True]}
    assert redact(value) == value
