"""Bare async Playwright running the benchmark's units (see unit.py): one browser, C asyncio workers, a fresh
context per unit seeded with the creator's login state. Spawned by bench_worker.py; prints nothing it needs.

  python bare_unit.py --base URL --units N --concurrency C --creators K
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from playwright.async_api import async_playwright
from unit import LAUNCH_OPTIONS, creator_of, run_unit, unit_args


async def main(args: argparse.Namespace) -> None:
    states: dict[str, Any] = {}
    locks = {creator_of(u, args.creators): asyncio.Lock() for u in range(args.creators)}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for unit in range(args.units):
        queue.put_nowait(unit)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(**LAUNCH_OPTIONS)

        async def worker() -> None:
            while not queue.empty():
                unit = queue.get_nowait()
                creator = creator_of(unit, args.creators)
                async with locks[creator]:  # one creator's units in order, as the worker's FIFO groups
                    context = await browser.new_context(storage_state=states.get(creator))
                    page = await context.new_page()
                    try:
                        if await run_unit(page, args.base, unit, args.creators):
                            states[creator] = await context.storage_state()
                    finally:
                        await context.close()

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main(unit_args()))
