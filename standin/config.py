"""Configuration of one stand-in platform instance.

Read by `standin.server.StandinServer` and `python -m standin`; tests and the local demo build it to choose
the shared creator password, the API key, the media catalogue size and the faults active from the start.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from standin.faults import Faults

DEFAULT_PASSWORD = "standin-password"
DEFAULT_API_KEY = "standin-api-key"


class StandinConfig(BaseModel):
    """What a stand-in instance serves; every creator account shares `password`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    password: str = DEFAULT_PASSWORD
    api_key: str = DEFAULT_API_KEY
    media_per_creator: int = Field(default=3, ge=0, le=1000)
    media_size_bytes: int = Field(default=64 * 1024, ge=0, le=64 * 1024 * 1024)
    faults: Faults = Field(default_factory=Faults)
