"""Settings base shared by the controller, the gate and the scraper.

Each program subclasses `HuntazeSettings` with its own fields and loads it through `load_settings`, which turns
pydantic's validation errors into one `SettingsError` naming the environment variable to fix. Values of secret
fields (the Redis URL may carry a password) are never echoed back.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "HUNTAZE_"


class SettingsError(Exception):
    """A required setting is missing or malformed. The message names each variable and what to set."""


class HuntazeSettings(BaseSettings):
    """Settings every program needs. Environment variables: ``HUNTAZE_<FIELD>`` unless an alias says otherwise."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    env: str = Field("local", description="Deployment environment: local, staging or production.")
    aws_endpoint_url: str | None = Field(
        None,
        validation_alias=AliasChoices("AWS_ENDPOINT_URL", "HUNTAZE_AWS_ENDPOINT_URL"),
        description="Endpoint for every AWS API (moto, LocalStack). Unset means real AWS.",
    )
    aws_region: str = Field(
        "us-east-1",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "HUNTAZE_AWS_REGION"),
        pattern=r"^[a-z]{2}(-[a-z]+)+-\d$",
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        validation_alias=AliasChoices("REDIS_URL", "HUNTAZE_REDIS_URL"),
        description="Redis URL, may hold a password: never logged.",
    )
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")


S = TypeVar("S", bound=HuntazeSettings)


def _env_names(cls: type[HuntazeSettings], field: str) -> list[str]:
    info = cls.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, AliasChoices):
        return [str(choice) for choice in info.validation_alias.choices]
    prefix = cls.model_config.get("env_prefix", ENV_PREFIX)
    return [f"{prefix}{field}".upper()]


def _is_secret(cls: type[HuntazeSettings], field: str) -> bool:
    info = cls.model_fields.get(field)
    return info is not None and info.annotation in (SecretStr, SecretStr | None)


def describe_errors(cls: type[HuntazeSettings], exc: ValidationError) -> str:
    """One line per bad setting: the variable(s), the problem and, unless secret, the value seen."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        names = " or ".join(_env_names(cls, field))
        problem = error["msg"]
        if error["type"] == "missing":
            lines.append(f"{names}: required setting is not set; export it and retry")
            continue
        shown = "" if _is_secret(cls, field) else f" (got {error.get('input')!r})"
        lines.append(f"{names}: {problem}{shown}; fix the variable and retry")
    return "\n".join(lines)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings from the environment (plus explicit overrides), or raise `SettingsError`."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_errors(cls, exc)) from None
