"""What every part of one stand-in instance shares: config, state, faults, and the hang release.

Built once per instance by `standin.server` (or `standin.app.build_app`) and handed to the route groups in
`standin.web`, `standin.api` and `standin.admin`. Also holds the body of a send, the same for the web form's
`fetch` and for the API, so both channels validate it identically.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from standin.config import StandinConfig
from standin.faults import FaultInjector
from standin.hang import HangRelease
from standin.store import Store

MAX_MESSAGE_CHARS = 10_000


@dataclass(frozen=True)
class Instance:
    config: StandinConfig
    store: Store
    faults: FaultInjector
    hangs: HangRelease

    @classmethod
    def create(cls, config: StandinConfig | None = None) -> Instance:
        config = config or StandinConfig()
        return cls(config=config, store=Store(), faults=FaultInjector(config.faults), hangs=HangRelease())

    def reset(self) -> None:
        """Back to the start state: no sessions, no messages, no counters, the configured faults."""
        self.store.reset()
        self.faults.set(self.config.faults)
        self.hangs.release_all()


class SendRequest(BaseModel):
    """Body of a send, through the web form or the API."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    client_ref: str | None = Field(default=None, max_length=256)


class BadRequestError(Exception):
    """The request body is not acceptable; `detail` says what to fix."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def parse_send(request: Request) -> SendRequest:
    body = await request.body()
    try:
        return SendRequest.model_validate_json(body)
    except ValidationError as exc:
        raise BadRequestError(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
