"""Where job outcomes and downloaded media go: S3 (seed "Scraper Result Schema").

Called by `scraper.runner` (one `ScraperResultData` JSON per finished job) and by site adapters (media bytes,
through `MediaSink`, uploaded before the browser context that downloaded them closes).

Keys are stable across redeliveries, so a redelivered job overwrites nothing new and its result is found again:
- results: ``results/{creator_id}/{action}/{yyyy}/{mm}/{dd}/{message_id}.json``, the date being the job's own
  timestamp (UTC) and ``message_id`` the origin message id;
- media: ``media/{creator_id}/{message_id}/{media_id}/{filename}``.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC
from typing import Any

from botocore.exceptions import ClientError

from common.aws import client
from common.contract import Job, ScraperResultData

_UNSAFE = re.compile(r"[^A-Za-z0-9._\-]")


def result_key(job: Job, message_id: str) -> str:
    stamp = job.timestamp.astimezone(UTC)
    return (
        f"results/{job.creator_id}/{job.action.value}/{stamp.year:04d}/{stamp.month:02d}/"
        f"{stamp.day:02d}/{safe_name(message_id)}.json"
    )


def media_key(job: Job, message_id: str, media_id: str, filename: str) -> str:
    return f"media/{job.creator_id}/{safe_name(message_id)}/{safe_name(media_id)}/{safe_name(filename)}"


def safe_name(value: str) -> str:
    return _UNSAFE.sub("_", value)[:200] or "_"


class ResultStore:
    """Puts results and media in one bucket. boto3 is blocking, so calls run in a worker thread."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def _s3(self) -> Any:
        return client("s3")

    async def put_result(self, job: Job, result: ScraperResultData) -> str:
        key = result_key(job, result.message_id)
        body = result.model_dump_json().encode()
        await asyncio.to_thread(
            self._s3().put_object, Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
        )
        return key

    async def has_result(self, key: str) -> bool:
        """Whether a result is stored under `key` (one HEAD request); other S3 errors raise."""

        def head() -> bool:
            try:
                self._s3().head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}:
                    return False
                raise
            return True

        return await asyncio.to_thread(head)

    async def get_result(self, key: str) -> ScraperResultData | None:
        def read() -> bytes | None:
            try:
                return bytes(self._s3().get_object(Bucket=self.bucket, Key=key)["Body"].read())
            except self._s3().exceptions.NoSuchKey:
                return None

        raw = await asyncio.to_thread(read)
        return None if raw is None else ScraperResultData.model_validate(json.loads(raw))

    async def put_media(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self._s3().put_object, Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
        )


class MediaSink:
    """What an adapter hands downloaded bytes to, for one job; remembers what it stored."""

    def __init__(self, store: ResultStore, job: Job, message_id: str) -> None:
        self._store = store
        self._job = job
        self._message_id = message_id
        self.stored: list[dict[str, Any]] = []

    async def put(self, media_id: str, filename: str, data: bytes, content_type: str) -> str:
        key = media_key(self._job, self._message_id, media_id, filename)
        await self._store.put_media(key, data, content_type)
        self.stored.append({"media_id": media_id, "s3_key": key, "bytes": len(data)})
        return key
