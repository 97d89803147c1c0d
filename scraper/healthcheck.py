"""``python -m scraper.healthcheck``: the ECS container health check command (exit 0 healthy, 1 not).

Reads ``HUNTAZE_HEALTH_PORT`` (8080) and asks the worker's `scraper.health` endpoint on loopback.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = int(os.environ.get("HUNTAZE_HEALTH_PORT", "8080"))
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
