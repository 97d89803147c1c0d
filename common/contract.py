"""The message contract of the pipeline: the job payload and the result record.

The producer (web API, CLI), the gate and the scraper all parse and build messages through these models, so a
job that one of them accepts is accepted by all. `parse_job` is the entry point for raw SQS bodies: it enforces
SQS's 256 KiB limit, then JSON, then field rules, and raises `ContractError` with one entry per bad field.
Invalid jobs are never retried: the gate dead-letters them with `ContractError.summary()` attached.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    model_validator,
)

SQS_MAX_BODY_BYTES = 262_144
CONTRACT_VERSION = "1"
# MessageGroupId allows up to 128 alphanumeric and punctuation characters; ids become group ids.
_ID_PATTERN = r"^[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}$"


class Action(StrEnum):
    SEND_MESSAGE = "send_message"
    SCRAPE_PROFILE = "scrape_profile"
    DOWNLOAD_MEDIA = "download_media"
    GET_MESSAGES = "get_messages"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class FieldProblem(BaseModel):
    """One bad field: a dotted path, what is wrong, and the pydantic error type."""

    model_config = ConfigDict(frozen=True)

    field: str
    message: str
    type: str


class ContractError(ValueError):
    """A payload that breaks the contract. Poison: send it to the DLQ, never retry it."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__(self.summary())

    def summary(self) -> str:
        return "; ".join(f"{p.field}: {p.message}" for p in self.problems)

    @classmethod
    def from_validation(cls, exc: ValidationError) -> ContractError:
        problems = []
        for err in exc.errors(include_url=False):
            path = ".".join(str(part) for part in err["loc"]) or "body"
            problems.append(FieldProblem(field=path, message=err["msg"], type=err["type"]))
        return cls(problems)


class JobMetadata(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    priority: Priority = Priority.NORMAL
    correlation_id: str | None = Field(None, min_length=1, max_length=128, pattern=_ID_PATTERN)
    campaign_id: str | None = Field(None, min_length=1, max_length=128)
    retry_count: int = Field(0, ge=0, le=1000)


class Job(BaseModel):
    """The seed's `OnlyFansMessagePayload`, with the action-specific fields it implies made required."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="OnlyFansMessagePayload")

    action: Action
    creator_id: str = Field(min_length=1, max_length=128, pattern=_ID_PATTERN)
    user_id: str = Field(min_length=1, max_length=128, pattern=_ID_PATTERN)
    timestamp: AwareDatetime = Field(description="ISO 8601 with a timezone, when the producer made the job.")
    message_content: str | None = Field(None, min_length=1, max_length=10_000)
    media_urls: list[HttpUrl] | None = Field(None, min_length=1, max_length=50)
    profile_url: HttpUrl | None = None
    metadata: JobMetadata = Field(default_factory=JobMetadata)

    @model_validator(mode="after")
    def _action_fields(self) -> Job:
        required = {
            Action.SEND_MESSAGE: "message_content",
            Action.DOWNLOAD_MEDIA: "media_urls",
            Action.SCRAPE_PROFILE: "profile_url",
        }.get(self.action)
        if required is not None and getattr(self, required) is None:
            raise ValueError(f"{required} is required when action is {self.action.value}")
        return self

    @property
    def group_id(self) -> str:
        """FIFO message group: the creator (every job has one; the seed's fallbacks never trigger)."""
        return self.creator_id or self.user_id or "default"

    def to_body(self) -> str:
        body = self.model_dump_json(exclude_none=True)
        check_body_size(body)
        return body


class ErrorType(StrEnum):
    NETWORK = "network"
    AUTH = "auth"
    RATE_LIMIT = "rate_limit"
    VALIDATION = "validation"
    UNKNOWN = "unknown"


class ResultResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    status_code: int
    data: Any = None


class ResultError(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: ErrorType
    message: str
    stack: str | None = None


class ResultMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    queue_wait_time_ms: int = Field(ge=0)
    scraping_time_ms: int = Field(ge=0)
    total_time_ms: int = Field(ge=0)


class ScraperResultData(BaseModel):
    """The seed's result record, stored by the scraper as JSON in S3."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str
    creator_id: str
    action: Action
    status: Literal["success", "failure", "rate_limited"]
    timestamp: datetime
    duration_ms: int = Field(ge=0)
    response: ResultResponse | None = None
    error: ResultError | None = None
    metrics: ResultMetrics


def check_body_size(body: str | bytes) -> None:
    size = len(body.encode() if isinstance(body, str) else body)
    if size > SQS_MAX_BODY_BYTES:
        raise ContractError(
            [
                FieldProblem(
                    field="body",
                    message=f"body is {size} bytes; SQS allows at most {SQS_MAX_BODY_BYTES}: "
                    "send media by URL, not inline",
                    type="too_large",
                )
            ]
        )


def parse_job(body: str | bytes) -> Job:
    """Parse a raw SQS body into a `Job`, or raise `ContractError` naming each bad field."""
    check_body_size(body)
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ContractError(
            [FieldProblem(field="body", message=f"not valid JSON: {exc}", type="json_invalid")]
        ) from None
    if not isinstance(raw, dict):
        raise ContractError(
            [FieldProblem(field="body", message="must be a JSON object", type="model_type")]
        )
    try:
        return Job.model_validate(raw)
    except ValidationError as exc:
        raise ContractError.from_validation(exc) from None


def json_schema(model: Literal["job", "result"]) -> dict[str, Any]:
    """JSON Schema for producers to validate before sending (``huntazectl schema job``)."""
    target: type[BaseModel] = Job if model == "job" else ScraperResultData
    schema = target.model_json_schema(mode="validation")
    schema["$id"] = f"https://huntaze.io/schemas/{model}/v{CONTRACT_VERSION}.json"
    return schema
