"""A lone call's latency against a bare aiohttp request, and the batching that remains under load.

python benchmarks/latency.py [--calls 400]

The portal runs in its own process (limits off). Rows: p50/p90 of a lone sequential
``await client.documents.get(id)`` (which also parses the envelope and structures a
``Document``) and of the same ``document.get`` with a bare ``aiohttp.ClientSession``
(``post(url, json=params)`` then ``await reply.json()``), both over one kept-alive connection;
then how many HTTP requests 1,000 concurrent gets cost. Set-up stays outside the timed regions.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aiohttp
from common import PortalProcess, machine, table

from bitrix_docgen_async import DocgenClient

GET = "crm.documentgenerator.document.get"


def quantiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p90, in milliseconds."""
    cuts = statistics.quantiles(samples, n=10)
    return statistics.median(samples) * 1000, cuts[8] * 1000


async def lone_gets(webhook: str, doc_id: int, calls: int) -> list[float]:
    samples = []
    async with DocgenClient.from_webhook(webhook, rate_limit=None, operating_budget=None) as c:
        await c.documents.get(doc_id)  # warm-up: connection open
        for _ in range(calls):
            started = time.perf_counter()
            await c.documents.get(doc_id)
            samples.append(time.perf_counter() - started)
    return samples


async def bare_gets(webhook: str, doc_id: int, calls: int) -> list[float]:
    """What a user would write with aiohttp alone: POST the params as JSON, decode the reply."""
    samples = []
    url = webhook + GET
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"id": doc_id}) as reply:
            await reply.read()
        for _ in range(calls):
            started = time.perf_counter()
            async with http.post(url, json={"id": doc_id}) as reply:
                await reply.json()
            samples.append(time.perf_counter() - started)
    return samples


async def concurrent_gets(portal: PortalProcess, doc_id: int, count: int) -> tuple[int, int]:
    before = (await portal.stats())["requests"]
    async with DocgenClient.from_webhook(portal.webhook_url) as client:
        found = await asyncio.gather(*(client.documents.get(doc_id) for _ in range(count)))
        ours = client.stats.http_requests
    after = (await portal.stats())["requests"]
    assert len(found) == count
    return after - before, ours


async def main(calls: int) -> None:
    async with PortalProcess(rate_limit=None, operating_budget=None, pdf_delay=0.0) as portal:
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=None) as client:
            document = await client.documents.add(
                template_id=portal.template_id, entity_type_id=2, entity_id=1
            )
        rows: list[list[Any]] = []
        # Alternate the two so that neither gets a quieter machine.
        ours: list[float] = []
        bare: list[float] = []
        for _ in range(4):
            bare += await bare_gets(portal.webhook_url, document.id, calls // 4)
            ours += await lone_gets(portal.webhook_url, document.id, calls // 4)
        bare_p50, bare_p90 = quantiles(bare)
        ours_p50, ours_p90 = quantiles(ours)
        rows.append(["bare aiohttp POST", len(bare), f"{bare_p50:.2f}", f"{bare_p90:.2f}", "1.00"])
        rows.append(
            [
                "client.documents.get (lone)",
                len(ours),
                f"{ours_p50:.2f}",
                f"{ours_p90:.2f}",
                f"{ours_p50 / bare_p50:.2f}",
            ]
        )
        portal_requests, client_requests = await concurrent_gets(portal, document.id, 1000)
    print(f"machine: {machine()}")
    print(table(["request", "calls", "p50 ms", "p90 ms", "p50 / bare"], rows))
    print()
    print(
        table(
            ["1,000 concurrent documents.get", "HTTP requests (portal)", "HTTP requests (client)"],
            [["RateLimit.standard()", portal_requests, client_requests]],
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=400)
    asyncio.run(main(parser.parse_args().calls))
