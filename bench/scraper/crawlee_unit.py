"""crawlee-python's PlaywrightCrawler running the benchmark's units (see unit.py): one Request per unit (its URL
the creator's profile, which crawlee opens), the handler logs in if bounced, reads the profile and sends.

Configured as /work/shared/peers/browser/crawlee_run.py found works: incognito pages (a fresh context per
unit), the creator's cookies added by a pre-navigation hook, no fingerprint injection (it would change the user
agent of a logged-in account), no retries (a send must not repeat), a unique key per unit (else units of one
creator collapse), memory storage, and desired=max=min concurrency C. The context is closed in a deferred
cleanup (closing it inside the handler ends the crawl). Spawned by bench_worker.py.

  python crawlee_unit.py --base URL --units N --concurrency C --creators K
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from crawlee import ConcurrencySettings, Request
from crawlee.crawlers import PlaywrightCrawler, PlaywrightCrawlingContext, PlaywrightPreNavCrawlingContext
from crawlee.storage_clients import MemoryStorageClient
from unit import FAN, LAUNCH_OPTIONS, creator_of, login_if_bounced, read_profile, send, unit_args, unit_text


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    cookies: dict[str, list[Any]] = {}
    crawler = PlaywrightCrawler(
        browser_type="chromium",
        browser_launch_options=dict(LAUNCH_OPTIONS),
        use_incognito_pages=True,
        fingerprint_generator=None,
        concurrency_settings=ConcurrencySettings(min_concurrency=args.concurrency,
                                                 max_concurrency=args.concurrency,
                                                 desired_concurrency=args.concurrency),
        max_request_retries=0,
        storage_client=MemoryStorageClient(),
        configure_logging=False,
    )

    @crawler.pre_navigation_hook
    async def seed_cookies(ctx: PlaywrightPreNavCrawlingContext) -> None:
        creator = ctx.request.user_data["creator"]
        if creator in cookies:
            await ctx.page.context.add_cookies(cookies[creator])

    @crawler.router.default_handler
    async def handler(ctx: PlaywrightCrawlingContext) -> None:
        page = ctx.page
        creator, unit = str(ctx.request.user_data["creator"]), int(str(ctx.request.user_data["unit"]))
        if await login_if_bounced(page, creator):
            cookies[creator] = await page.context.cookies()
        await read_profile(page, creator)
        await send(page, args.base, unit_text(unit), f"bench-{unit}")

        async def close() -> None:
            await page.context.close()

        ctx.register_deferred_cleanup(close)

    requests = [Request.from_url(f"{args.base}/u/{creator_of(u, args.creators)}", unique_key=f"unit-{u}",
                                 user_data={"creator": creator_of(u, args.creators), "unit": u, "fan": FAN})
                for u in range(args.units)]
    await crawler.run(requests)


if __name__ == "__main__":
    asyncio.run(main(unit_args()))
