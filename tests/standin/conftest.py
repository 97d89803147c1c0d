"""Fixtures for the stand-in platform tests, re-exported from `standin.testing` so other suites can share them.

- `standin_server` (session) and `standin` (per test: the same server, reset before and after the test).
  One server for the session keeps the suite fast; the reset makes tests independent. Tests that need a
  different `StandinConfig` or must stop the server start their own `StandinServer`.
- `playwright`, `browser` (session; Debian Chromium, fails with "apt-get install chromium" if missing, and
  fails at teardown if a Chromium process outlives it) and `browser_context` (per test).
"""

from __future__ import annotations

from standin.testing import browser, browser_context, playwright, standin, standin_server

__all__ = ["browser", "browser_context", "playwright", "standin", "standin_server"]
