"""JSON logging: one object per line with Logs Insights fields, bound context, secrets masked."""

from __future__ import annotations

import io
import json
import logging
import threading

from common.jsonlog import MASK, bind, configure_logging


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_log_line_is_one_json_object_with_insights_fields() -> None:
    out = io.StringIO()
    configure_logging("gate", stream=out)
    logging.getLogger("gate.handler").info("forwarded %d", 3, extra={"duration_ms": 12})
    (entry,) = lines(out)
    assert entry["level"] == "INFO"
    assert entry["message"] == "forwarded 3"
    assert entry["service"] == "gate"
    assert entry["duration_ms"] == 12
    assert str(entry["timestamp"]).endswith("+00:00")


def test_bound_context_appears_and_is_per_thread() -> None:
    out = io.StringIO()
    configure_logging("scraper", stream=out)
    log = logging.getLogger("scraper")

    def other() -> None:
        log.info("other thread")

    with bind(creator_id="c1", message_id="m1", action="send_message"):
        log.info("inside")
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    log.info("outside")
    by_message = {e["message"]: e for e in lines(out)}
    assert by_message["inside"]["creator_id"] == "c1"
    assert by_message["inside"]["action"] == "send_message"
    assert "creator_id" not in by_message["other thread"]
    assert "creator_id" not in by_message["outside"]


def test_secret_looking_fields_are_masked() -> None:
    out = io.StringIO()
    configure_logging("controller", stream=out)
    logging.getLogger("x").warning("login", extra={"password": "hunter2", "headers": {"Authorization": "B t"}})
    (entry,) = lines(out)
    assert entry["password"] == MASK
    assert entry["headers"] == {"Authorization": MASK}
    assert "hunter2" not in out.getvalue()
