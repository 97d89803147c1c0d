"""``python -m scraper``: run the worker loop until SIGTERM (see `scraper.worker`).

``--help`` prints the settings table, ``--check`` checks this environment's settings, ``--schema`` prints the
settings contract (scraper/settings.schema.json); none of them starts the worker.
"""

import sys

from common.settings import program_main
from scraper.settings import ScraperSettings

USAGE = """usage: python -m scraper [--help | --check | --schema]

The Huntaze scraper worker: consumes the workflows FIFO queue and drives Chromium through Playwright, until
SIGTERM. It is configured only by environment variables; without an option it starts.

  --help    this text and the settings table
  --check   load the settings from this environment; print each problem (exit 2) or "settings ok"
  --schema  print the settings contract as JSON (scraper/settings.schema.json)"""

code = program_main(ScraperSettings, "scraper", sys.argv[1:], USAGE)
if code is not None:
    sys.exit(code)

from scraper.worker import main  # noqa: E402 - the worker's imports (Playwright, boto3) only when it runs

sys.exit(main())
