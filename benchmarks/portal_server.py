"""Serve a FakePortal in its own process for benchmarks; answer "stats" lines on stdin."""

from __future__ import annotations

import asyncio
import json
import resource
import sys

from bitrix_docgen_async import OperatingBudget, RateLimit
from bitrix_docgen_async.testing import FakePortal


async def main(config: dict[str, object]) -> None:
    rate = config.pop("rate_limit", None)
    budget = config.pop("operating_budget", None)
    seed_documents = int(config.pop("seed_documents", 0))  # type: ignore[call-overload]
    async with FakePortal(
        rate_limit=RateLimit(**rate) if isinstance(rate, dict) else None,
        operating_budget=OperatingBudget(**budget) if isinstance(budget, dict) else None,
        **config,  # type: ignore[arg-type]
    ) as portal:
        template = portal.seed_template()
        for entity in range(1, seed_documents + 1):
            portal.seed_document(template, entity_id=entity)
        print(json.dumps({"webhook_url": portal.webhook_url, "template_id": template}), flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            if line.strip() == "stats":
                stats = portal.stats
                reply = {
                    "requests": stats.requests,
                    "commands": stats.commands,
                    "rejected_rate_limit": stats.rejected_rate_limit,
                    "rejected_operating": stats.rejected_operating,
                    "documents": len(portal.documents),
                    "entities": len({d["entityId"] for d in portal.documents.values()}),
                    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                }
                print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
