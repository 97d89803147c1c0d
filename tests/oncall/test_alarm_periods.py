"""The alarm evaluator's period logic in one process, with a frozen clock, against alarms in a real moto server.

Production settings from manifests/alarms.yaml (5-minute periods, time scale 1): the clock is moved, not waited.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from freezegun import freeze_time

from common.aws import client
from localplane.alarms import AlarmEvaluator

from .conftest import Inbox, put, states

START = datetime(2026, 12, 1, 3, 0, 0, tzinfo=UTC)
ENV = {"Environment": "local"}
FIFO = {"QueueName": "huntaze-hybrid-workflows.fifo"}


def test_evaluator_queue_age_over_threshold_alarms_then_clears_when_a_period_has_no_breach(alarms: Inbox) -> None:
    evaluator = AlarmEvaluator(scale=1.0)
    with freeze_time(START) as clock:
        put("AWS/SQS", "ApproximateAgeOfOldestMessage", FIFO, 700, START)
        clock.tick(1)
        evaluator.tick()
        now = states()
        assert now["workflows_queue_age_high"] == "ALARM"  # > 600 s
        assert now["workflows_queue_age_critical"] == "OK"  # not > 1800 s
        put("AWS/SQS", "ApproximateAgeOfOldestMessage", FIFO, 100, START + timedelta(seconds=200))
        clock.tick(250)  # the 700 is still in the last 300 s: Maximum stays above
        evaluator.tick()
        assert states()["workflows_queue_age_high"] == "ALARM"
        clock.tick(100)  # the 700 left the window; only the 100 remains
        evaluator.tick()
        assert states()["workflows_queue_age_high"] == "OK"
    assert alarms.notified("workflows_queue_age_high", "ALARM")
    assert alarms.notified("workflows_queue_age_high", "OK")


def test_evaluator_failure_rate_needs_two_breaching_periods_of_two(alarms: Inbox) -> None:
    evaluator = AlarmEvaluator(scale=1.0)
    with freeze_time(START) as clock:
        put("Huntaze/OnlyFans", "scraping_success_rate", ENV, 20, START)  # 80 % failures
        clock.tick(1)
        evaluator.tick()
        assert states()["scraper_failure_rate_critical"] == "OK"  # 1 of 2 periods; the other is missing
        put("Huntaze/OnlyFans", "scraping_success_rate", ENV, 30, START + timedelta(seconds=300))
        clock.tick(300)
        evaluator.tick()
        assert states()["scraper_failure_rate_critical"] == "ALARM"
        reason = client("cloudwatch").describe_alarms(AlarmNames=["scraper_failure_rate_critical"])["MetricAlarms"][0]
        assert json.loads(reason["StateReasonData"])["trippingValue"] == 70  # 100 - 30
        put("Huntaze/OnlyFans", "scraping_success_rate", ENV, 100, START + timedelta(seconds=600))
        clock.tick(300)
        evaluator.tick()
        assert states()["scraper_failure_rate_critical"] == "OK"  # only 1 of the last 2 periods breaches


def test_evaluator_dlq_math_adds_both_queues_and_fills_a_missing_one(alarms: Inbox) -> None:
    evaluator = AlarmEvaluator(scale=1.0)
    metric = "ApproximateNumberOfMessagesVisible"
    with freeze_time(START) as clock:
        put("AWS/SQS", metric, {"QueueName": "huntaze-rate-limiter-dlq"}, 80, START)
        clock.tick(1)
        evaluator.tick()
        assert states()["dlq_messages_critical"] == "OK"  # 80 + FILL(missing, 0)
        put("AWS/SQS", metric, {"QueueName": "huntaze-hybrid-workflows-dlq.fifo"}, 30, START + timedelta(seconds=2))
        clock.tick(2)
        evaluator.tick()
        assert states()["dlq_messages_critical"] == "ALARM"  # 80 + 30 > 100
        clock.tick(301)
        evaluator.tick()
        assert states()["dlq_messages_critical"] == "OK"  # notBreaching: no data is no dead letters
    assert alarms.notified("dlq_messages_critical", "ALARM")


def test_evaluator_lambda_errors_sum_over_the_period(alarms: Inbox) -> None:
    evaluator = AlarmEvaluator(scale=1.0)
    fn = {"FunctionName": "huntaze-rate-limiter"}
    with freeze_time(START) as clock:
        for i in range(5):
            put("AWS/Lambda", "Errors", fn, 10, START + timedelta(seconds=i * 50))
        clock.tick(201)
        evaluator.tick()
        assert states()["lambda_errors_critical"] == "OK"  # 50 is not > 50
        put("AWS/Lambda", "Errors", fn, 1, START + timedelta(seconds=201))
        clock.tick(1)
        evaluator.tick()
        assert states()["lambda_errors_critical"] == "ALARM"
        clock.tick(300)
        evaluator.tick()
        assert states()["lambda_errors_critical"] == "OK"


def test_evaluator_time_scale_shrinks_periods(alarms: Inbox) -> None:
    evaluator = AlarmEvaluator(scale=60.0)  # 300 s periods last 5 s
    with freeze_time(START) as clock:
        put("AWS/SQS", "ApproximateAgeOfOldestMessage", FIFO, 700, START)
        clock.tick(1)
        evaluator.tick()
        assert states()["workflows_queue_age_high"] == "ALARM"
        clock.tick(5)
        evaluator.tick()
        assert states()["workflows_queue_age_high"] == "OK"
