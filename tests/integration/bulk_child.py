"""A bulk run in its own process, for the crash-and-resume test (not collected by pytest)."""

from __future__ import annotations

import asyncio
import sys

from bitrix_docgen_async import DocgenClient, RateLimit
from bitrix_docgen_async.core.pdf import PollSchedule


async def main(webhook: str, template: int, count: int, journal: str, out: str) -> None:
    limit = RateLimit(burst=50, per_second=100.0)
    schedule = PollSchedule(min_conversion=0.05, interval=0.05)
    async with DocgenClient.from_webhook(webhook, rate_limit=limit, pdf_schedule=schedule) as c:
        async for result in c.documents.generate_many(
            template_id=template,
            entity_type_id=2,
            entity_ids=range(1, count + 1),
            download_dir=out,
            journal=journal,
            max_in_flight=40,
            reconcile_delay=0.05,
        ):
            print(result.entity_id, "ok" if result.ok else repr(result.error), flush=True)


if __name__ == "__main__":
    url, template_id, total, journal_path, out_dir = sys.argv[1:6]
    asyncio.run(main(url, int(template_id), int(total), journal_path, out_dir))
