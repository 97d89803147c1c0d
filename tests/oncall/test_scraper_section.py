"""The scraper section of `huntazectl status`: failure rate by error class and 429/5xx counts, read back from
the moto CloudWatch (over HTTP) that the scraper's own metrics publisher (scraper/metrics.py) wrote to."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

from common.contract import ErrorType
from controller.cli import main as huntazectl
from controller.oncall.collect import ERROR_CLASSES
from scraper.metrics import Metrics


def status_json() -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        huntazectl(["status", "-o", "json"])
    data: dict[str, Any] = json.loads(out.getvalue())
    return data


def test_status_scraper_failure_rate_by_error_class_from_the_scrapers_metrics(aws: str, capsys: Any) -> None:
    metrics = Metrics("Huntaze/OnlyFans", {"Environment": "local"})
    outcomes = [("", 200)] * 12 + [("network", 503)] * 5 + [("rate_limit", 429)] * 2 + [("auth", 403)]
    for error_type, status in outcomes:
        metrics.record_status(status)
        metrics.record_job(success=not error_type, duration_ms=120, error_type=error_type)
    assert metrics.flush_sync() > 0
    other_env = Metrics("Huntaze/OnlyFans", {"Environment": "prod"})  # another environment's failures: not ours
    other_env.record_job(success=False, duration_ms=1, error_type="validation")
    other_env.flush_sync()

    scraper = status_json()["scraper"]

    assert scraper["failures_by_class"] == {"network": 5, "rate_limit": 2, "auth": 1}
    assert scraper["failure_rate_by_class_pct"] == {"network": 25.0, "rate_limit": 10.0, "auth": 5.0}
    assert scraper["failure_rate_pct"] == 40.0
    assert (scraper["count_429"], scraper["count_5xx"]) == (2, 5)
    capsys.readouterr()
    huntazectl(["status"])
    table = capsys.readouterr().out
    assert "failure rate 40% (network 25%, rate_limit 10%, auth 5%); 429 2, 5xx 5" in " ".join(table.split())


def test_status_scraper_without_failures_shows_no_class(aws: str, capsys: Any) -> None:
    metrics = Metrics("Huntaze/OnlyFans", {"Environment": "local"})
    for _ in range(3):
        metrics.record_job(success=True, duration_ms=50)
    metrics.flush_sync()

    scraper = status_json()["scraper"]
    assert scraper["failures_by_class"] == {} and scraper["failure_rate_pct"] == 0.0

    capsys.readouterr()
    huntazectl(["status"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("Scraper:"))
    assert "failure rate 0%;" in line


def test_status_reads_a_failure_count_for_every_error_class_of_the_contract() -> None:
    assert set(ERROR_CLASSES) == {kind.value for kind in ErrorType}
