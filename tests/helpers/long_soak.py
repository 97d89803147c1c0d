"""The switch for the longest soak tests in a hand run of ``-m soak``: `.ci/run` runs them all.

`long_soak` skips a test unless ``HUNTAZE_LONG_SOAK=1``. `.ci/run` sets it and runs the whole soak suite in two
lanes (pytest-xdist), so CI skips none; by hand, ``HUNTAZE_LONG_SOAK=1 .venv/bin/python -m pytest -q -m soak
<module>``. Each use says how long the test takes. The load-scale tests no longer use it; once no test does, this
module goes.
"""

from __future__ import annotations

import os

import pytest


def long_soak(minutes: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not os.environ.get("HUNTAZE_LONG_SOAK"), reason=(
        f"{minutes} min; .ci/run runs it (HUNTAZE_LONG_SOAK=1); run by hand with "
        "HUNTAZE_LONG_SOAK=1 .venv/bin/python -m pytest -q -m soak <this module>"))
