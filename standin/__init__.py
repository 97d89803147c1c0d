"""Stand-in creator platform: a small local web app that plays the external site in tests, demo, benchmarks.

Public surface (the scraper's site adapter, the tests and `huntazectl up` use only these):

- `StandinServer` (`standin.server`): run an instance on a loopback port in a background thread.
- `StandinConfig` (`standin.config`): password, API key, media catalogue, initial faults.
- `Faults`, `RateLimitFault`, `Error5xxFault` (`standin.faults`): injected misbehaviour.
- `MessageRecord`, `Store` (`standin.store`): what the instance received, for counting duplicates.
- `RENDERER_CRASH_LAUNCH_ARGS`: Chromium launch flags that make the renderer-crash fault cheap.
- `python -m standin`: the same server as a process (`standin.__main__`).
"""

from standin.config import StandinConfig
from standin.faults import Error5xxFault, Faults, RateLimitFault
from standin.pages import RENDERER_CRASH_LAUNCH_ARGS
from standin.server import StandinError, StandinServer
from standin.store import MessageRecord, Store

__all__ = [
    "RENDERER_CRASH_LAUNCH_ARGS",
    "Error5xxFault",
    "Faults",
    "MessageRecord",
    "RateLimitFault",
    "StandinConfig",
    "StandinError",
    "StandinServer",
    "Store",
]
