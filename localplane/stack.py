"""The embedded local stack behind `huntazectl up`: moto, Redis, the stand-in platform, and the plane.

`LocalStack` starts the servers on free loopback ports and exports the standard environment (AWS_ENDPOINT_URL,
region, dummy credentials, REDIS_URL) so the controller, the gate runtime and the scraper tasks all reach them
the same way they would reach AWS. Everything it starts is stopped on exit, children first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from common.aws import clear_client_cache
from localplane.services import MotoServer, RedisServer
from standin.server import StandinServer

LOCAL_REGION = "us-east-1"


@dataclass
class LocalStack:
    run_dir: Path
    moto: MotoServer = field(init=False)
    redis: RedisServer = field(init=False)
    site: StandinServer = field(init=False)

    def __enter__(self) -> Self:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.moto = MotoServer(workdir=self.run_dir)
        self.moto.start()
        self.redis = RedisServer(workdir=self.run_dir)
        self.redis.start()
        self.site = StandinServer()
        self.site.start()
        os.environ.update(self.aws_env())
        os.environ["REDIS_URL"] = self.redis.url
        clear_client_cache()
        return self

    def aws_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.moto.url,
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        }

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.site.stop()
        self.redis.close()
        self.moto.close()
