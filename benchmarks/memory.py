"""Peak RSS of the client while generate_many walks 100,000 entity ids (portal in another process).

python benchmarks/memory.py [--entities 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterator

from common import PortalProcess, machine, peak_rss_mb, table

from bitrix_docgen_async import DocgenClient


def ids(count: int) -> Iterator[int]:
    yield from range(1, count + 1)


async def main(count: int) -> None:
    async with PortalProcess(rate_limit=None, operating_budget=None, pdf_delay=0.0) as portal:
        before = peak_rss_mb()
        started = time.perf_counter()
        ok = 0
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=None) as client:
            async for result in client.documents.generate_many(
                template_id=portal.template_id,
                entity_type_id=2,
                entity_ids=ids(count),
                wait_pdf=False,
            ):
                ok += result.ok
        wall = time.perf_counter() - started
        stats = await portal.stats()
    print(f"machine: {machine()}")
    print(
        table(
            ["entities", "ok", "documents", "HTTP requests", "wall s", "client peak RSS MiB"],
            [
                [
                    count,
                    ok,
                    stats["documents"],
                    stats["requests"],
                    f"{wall:.1f}",
                    f"{peak_rss_mb():.0f} (at start {before:.0f})",
                ]
            ],
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entities", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().entities))
