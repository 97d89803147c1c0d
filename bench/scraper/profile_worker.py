"""Run the scraper worker (`python -m scraper`) under a CPU profiler of all its threads, for the benchmark.

bench_worker.py ``--profile DIR`` starts the worker through this module instead of ``-m scraper``; on SIGTERM the
worker drains as usual, then the profile is written to ``DIR/worker-c<C>-<pid>.pstats`` (pstats format) and a
top-40 by own CPU time to the ``.txt`` beside it. Uses yappi (CPU clock, every thread: boto3 calls run in
executor threads, where cProfile does not look); ``pip install yappi`` in the venv to use it. A profiler slows
the process it measures: profiled runs are for finding where the time goes, not for the cost figures.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

import yappi  # type: ignore[import-not-found, unused-ignore]

from common.jsonlog import configure_logging
from common.settings import load_settings
from scraper.settings import ScraperSettings
from scraper.worker import exit_now, serve


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    settings = load_settings(ScraperSettings)
    configure_logging("scraper", settings.log_level)
    yappi.set_clock_type("cpu")
    yappi.start(builtins=False)
    code = asyncio.run(serve(settings))
    yappi.stop()
    stem = out / f"worker-c{settings.concurrency}-{os.getpid()}"
    stats = yappi.get_func_stats()
    stats.save(str(stem.with_suffix(".pstats")), type="pstat")
    text = io.StringIO()
    stats.sort("tsub").print_all(out=text, columns={0: ("name", 100), 1: ("ncall", 8), 2: ("tsub", 8),
                                                    3: ("ttot", 8), 4: ("tavg", 8)})
    lines = text.getvalue().splitlines()
    threads = io.StringIO()
    yappi.get_thread_stats().print_all(out=threads)
    stem.with_suffix(".txt").write_text("\n".join(lines[:50]) + "\n\n" + threads.getvalue())
    exit_now(code)


if __name__ == "__main__":
    main()
