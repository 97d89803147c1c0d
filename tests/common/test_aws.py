"""The AWS client factory: endpoint from the environment, retry/timeout config, one client per service."""

from __future__ import annotations

from common.aws import READ_TIMEOUT_S, client


def test_client_honours_endpoint_and_is_cached(aws: str) -> None:
    sqs = client("sqs")
    assert sqs is client("sqs")
    assert sqs is not client("s3")
    assert sqs.meta.endpoint_url == aws
    assert sqs.meta.region_name == "us-east-1"
    config = sqs.meta.config
    assert config.retries["mode"] == "adaptive"
    assert config.read_timeout == READ_TIMEOUT_S > 20  # above SQS long polling's 20 s wait
    assert sqs.list_queues().get("QueueUrls", []) == []
