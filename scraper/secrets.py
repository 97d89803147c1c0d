"""Reads Secrets Manager secrets for the site adapters (API key, login password), off the event loop.

Called by adapters through `AdapterContext.read_secret`. Values are cached for the life of the process and
never logged; errors name the secret id and what to do, never its value.
"""

from __future__ import annotations

import asyncio
import json

from common.aws import client
from scraper.errors import ConfigError


class SecretReader:
    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def _read(self, secret_id: str) -> str:
        sm = client("secretsmanager")
        try:
            value = sm.get_secret_value(SecretId=secret_id)
        except sm.exceptions.ResourceNotFoundException:
            raise ConfigError(
                f"secret {secret_id!r} does not exist: create it in Secrets Manager or set the *_SECRET_ID "
                "setting to the right id"
            ) from None
        text = value.get("SecretString")
        if not isinstance(text, str):
            raise ConfigError(f"secret {secret_id!r} has no SecretString: store it as a string")
        return text

    async def __call__(self, secret_id: str) -> str:
        if secret_id not in self._cache:
            self._cache[secret_id] = await asyncio.to_thread(self._read, secret_id)
        return self._cache[secret_id]


def json_field(raw: str, field: str, secret_id: str) -> str:
    """One string field of a JSON secret, or `ConfigError` naming the field (never the value)."""
    try:
        value = json.loads(raw).get(field)
    except (ValueError, AttributeError):
        value = None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"secret {secret_id!r} must be JSON with a non-empty string {field!r}")
    return value
