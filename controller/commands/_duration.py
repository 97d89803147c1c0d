"""Durations on the command line (``60s``, ``5m``, ``24h``, ``1d``, or plain seconds), for the operator commands."""

from __future__ import annotations

import argparse
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def duration(text: str) -> float:
    """Seconds in ``text``; an `argparse` type, so a bad value is a usage error naming the option."""
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: write e.g. 30s, 5m, 24h or 1d")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]
