"""Each action end to end through each adapter: a job on the real FIFO queue (moto), the worker, the real
stand-in site, the result JSON and media in S3, the message on the stand-in's record."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from scraper_testkit import Plane, job, run_worker

from scraper.adapters.registry import resolve_factory
from scraper.errors import ConfigError
from standin import content


@pytest.mark.parametrize("adapter", ["http", "browser"])
def test_worker_each_action_stores_result_and_deletes(adapter: str, plane: Plane, standin: Any,
                                                      make_settings: Any) -> None:
    jobs = [
        job("send_message", "alice", user="fan-9", text="hi from the worker"),
        job("scrape_profile", "alice", profile_url="https://elsewhere.invalid/u/bob"),
        job("get_messages", "alice", user="fan-9"),
        job("download_media", "alice"),
    ]
    ids = [plane.send(j) for j in jobs]
    settings = make_settings(adapter=adapter)
    run_worker(settings, until=lambda w: len(plane.result_keys()) == 4 and plane.counts() == (0, 0),
               timeout_s=90)

    keys = plane.result_keys()
    by_action = {key.split("/")[2]: plane.read_json(key) for key in keys}
    assert set(by_action) == {"send_message", "scrape_profile", "get_messages", "download_media"}
    assert all(result["status"] == "success" for result in by_action.values()), by_action
    assert {result["message_id"] for result in by_action.values()} == set(ids)
    assert keys[0].startswith("results/alice/") and "/2025/10/29/" in keys[0]

    sent = standin.state.messages()
    assert [(m.creator_id, m.user_id, m.text) for m in sent] == [("alice", "fan-9", "hi from the worker")]
    assert sent[0].channel == ("api" if adapter == "http" else "web")
    assert sent[0].client_ref

    profile = by_action["scrape_profile"]["response"]["data"]
    expected = content.profile("bob")
    assert (profile["name"], profile["followers"]) == (expected.name, expected.followers)

    thread = by_action["get_messages"]["response"]["data"]["messages"]
    assert [m["text"] for m in thread][-1] == "hi from the worker"

    cloudwatch = boto3.client("cloudwatch", endpoint_url=plane.endpoint, region_name="us-east-1")
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="Huntaze/OnlyFans")["Metrics"]}
    assert {"scraping_success_rate", "scraping_duration_ms", "scraping_jobs_count"} <= names

    media_keys = plane.result_keys("media/")
    assert len(media_keys) == 2 and all(key.startswith("media/alice/") for key in media_keys)
    body = plane.s3().get_object(Bucket=plane.bucket, Key=media_keys[0])["Body"].read()
    assert body == content.media_bytes("alice-m1", standin.config.media_size_bytes)


def test_registry_unknown_adapter_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="use one of browser, http"):
        resolve_factory("no-such-platform")
