"""``python -m scraper``: run the worker loop until SIGTERM (see `scraper.worker`)."""

import sys

from scraper.worker import main

sys.exit(main())
