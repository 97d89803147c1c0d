"""The one switch for soak tests too long for `.ci/run`'s 90 minutes beside the rest of the soak suite.

`long_soak` skips a test unless ``HUNTAZE_LONG_SOAK=1``; run them by hand with
``HUNTAZE_LONG_SOAK=1 .venv/bin/python -m pytest -q -m soak <module>``. Each use says how long the test takes.
"""

from __future__ import annotations

import os

import pytest


def long_soak(minutes: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not os.environ.get("HUNTAZE_LONG_SOAK"), reason=(
        f"{minutes} min, beyond CI's 90 min with the rest of the soak suite; run by hand with "
        "HUNTAZE_LONG_SOAK=1 .venv/bin/python -m pytest -q -m soak <this module>"))
