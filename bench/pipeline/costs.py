"""Production estimates from measured per-job costs: tasks, Lambda concurrency, Redis ops/s, monthly AWS cost.

Called by `bench.pipeline.__main__` with the figures it measured on this machine. Prices are us-east-1 list
prices (2024, ARM/Graviton where the design uses it); they are constants here so the arithmetic is visible and a
reader can change them. Request counts per job that cannot be measured locally (the scraper's SQS calls) are
counted from the code path and named as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HOURS_PER_MONTH = 730
SECONDS_PER_DAY = 86_400
# us-east-1 list prices
FARGATE_ARM_VCPU_H = 0.03238
FARGATE_ARM_GB_H = 0.00356
FARGATE_SPOT_DISCOUNT = 0.70  # the design: Spot saves about 70 %
SPOT_SHARE = 0.70  # the service's capacity provider strategy: 70 % Spot, 30 % on demand
LAMBDA_PER_M_REQUESTS = 0.20
LAMBDA_ARM_GB_S = 0.0000133334
SQS_STANDARD_PER_M = 0.40
SQS_FIFO_PER_M = 0.50
S3_PUT_PER_K = 0.005
S3_GB_MONTH = 0.023
LOGS_INGEST_GB = 0.50
CW_METRIC_MONTH = 0.30
CW_ALARM_MONTH = 0.10
REDIS_T4G_MICRO_H = 0.016
REDIS_T4G_SMALL_H = 0.032
REDIS_MICRO_OPS_S = 20_000  # a conservative ceiling for cache.t4g.micro with short Lua scripts
# Scraper SQS requests per job, from scraper/consumer.py: its share of a 10-message receive, one delete, and
# about one visibility change (heartbeat or release).
SCRAPER_FIFO_REQUESTS_PER_JOB = 0.1 + 1 + 1
PEAK_FACTOR = 2.0  # traffic is not flat over a day: size for twice the mean rate
TASK_VCPU, TASK_GB = 1, 2
LAMBDA_GB = 0.256
CUSTOM_METRICS, ALARMS = 50, 10


@dataclass(frozen=True)
class PerJob:
    """What one job costs, measured on this machine (see `bench.pipeline.__main__`)."""

    gate_invocations: float  # Lambda invocations per job
    gate_seconds: float  # handler seconds per invocation
    redis_ops: float  # Redis commands per job (gate + scraper: limiter, breaker, idempotency)
    ingress_requests: float  # SQS standard requests per job (send, receive, delete, deferral re-sends)
    fifo_sends: float  # FIFO SendMessageBatch requests per job made by the gate
    scraper_jobs_per_s_per_task: float
    result_bytes: float
    log_bytes: float


@dataclass(frozen=True)
class Estimate:
    jobs_per_day: int
    tasks: int
    lambda_concurrency: int
    redis_ops_s: float
    monthly: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.monthly.values())


def task_month() -> float:
    on_demand = (TASK_VCPU * FARGATE_ARM_VCPU_H + TASK_GB * FARGATE_ARM_GB_H) * HOURS_PER_MONTH
    return on_demand * (SPOT_SHARE * (1 - FARGATE_SPOT_DISCOUNT) + (1 - SPOT_SHARE))


def estimate(jobs_per_day: int, per_job: PerJob) -> Estimate:
    mean_rate = jobs_per_day / SECONDS_PER_DAY
    peak_rate = mean_rate * PEAK_FACTOR
    tasks = max(1, math.ceil(peak_rate / per_job.scraper_jobs_per_s_per_task))
    invocations_s = peak_rate * per_job.gate_invocations
    concurrency = max(1, math.ceil(invocations_s * per_job.gate_seconds))  # Little's law
    redis_ops_s = peak_rate * per_job.redis_ops
    jobs_month = jobs_per_day * 30
    redis_hourly = REDIS_T4G_MICRO_H if redis_ops_s < REDIS_MICRO_OPS_S / 2 else REDIS_T4G_SMALL_H
    monthly = {
        "Fargate (scraper tasks)": tasks * task_month(),
        "Lambda (gate)": jobs_month * per_job.gate_invocations * (
            LAMBDA_PER_M_REQUESTS / 1e6 + per_job.gate_seconds * LAMBDA_GB * LAMBDA_ARM_GB_S),
        "SQS": jobs_month * (per_job.ingress_requests * SQS_STANDARD_PER_M
                             + (per_job.fifo_sends + SCRAPER_FIFO_REQUESTS_PER_JOB) * SQS_FIFO_PER_M) / 1e6,
        "ElastiCache Redis": redis_hourly * HOURS_PER_MONTH,
        "S3 (results)": jobs_month * S3_PUT_PER_K / 1000 + jobs_month * per_job.result_bytes / 1e9 * S3_GB_MONTH * 3,
        "CloudWatch (logs, metrics, alarms)": jobs_month * per_job.log_bytes / 1e9 * LOGS_INGEST_GB
        + CUSTOM_METRICS * CW_METRIC_MONTH + ALARMS * CW_ALARM_MONTH,
    }
    return Estimate(jobs_per_day, tasks, concurrency, redis_ops_s, monthly)
