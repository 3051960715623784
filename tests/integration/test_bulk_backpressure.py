"""generate_many under a slow or vanishing consumer: back-pressure, bounded close, no late sends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from bitrix_docgen_async import DocgenClient, RateLimit
from bitrix_docgen_async.testing import FakePortal
from bitrix_docgen_async.workflows.bulk import GenerationResult

FAST = RateLimit(burst=50, per_second=200.0)
ADD = "crm.documentgenerator.document.add"


async def settled(portal: FakePortal, quiet: float = 0.3, bound: float = 5.0) -> int:
    """The portal's document count once it stopped growing for ``quiet`` s (within ``bound``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    count = len(portal.documents)
    while loop.time() < deadline:
        await asyncio.sleep(quiet)
        now = len(portal.documents)
        if now == count:
            return count
        count = now
    return count


def pipeline_tasks() -> list[asyncio.Task[object]]:
    """Tasks of generate_many still alive (its feeder and per-entity workers)."""
    return [
        task
        for task in asyncio.all_tasks()
        if "_pipeline" in getattr(task.get_coro(), "__qualname__", "") and not task.done()
    ]


def stream(client: DocgenClient, template: int, count: int) -> AsyncIterator[GenerationResult]:
    return client.documents.generate_many(
        template_id=template,
        entity_type_id=2,
        entity_ids=range(1, count + 1),
        wait_pdf=False,
        max_in_flight=10,
    )


async def test_a_paused_consumer_pauses_the_run() -> None:
    async with FakePortal(rate_limit=FAST) as portal:
        template = portal.seed_template()
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
            results = stream(client, template, 1000)
            first = await anext(results)
            assert first.ok
            created = await settled(portal)
            alive = len(pipeline_tasks())
            # one handed over, ten in flight, a small buffer: far from 1,000
            assert created <= 1 + 10 + 16, created
            assert alive <= 10 + 16, alive
            rest = [r async for r in results]
        assert len(rest) == 999 and all(r.ok for r in rest)
        assert len(portal.documents) == 1000


async def test_aclose_with_a_full_buffer_returns_and_sends_nothing_more() -> None:
    async with FakePortal(rate_limit=FAST, method_costs={ADD: 0.05}) as portal:
        template = portal.seed_template()
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
            results = stream(client, template, 1000)
            await anext(results)
            await settled(portal)  # the buffer is full, the run paused
            async with asyncio.timeout(10):
                await results.aclose()  # type: ignore[attr-defined]
            sent = portal.stats.by_method[ADD]
            assert pipeline_tasks() == []
            async with asyncio.timeout(10):
                await asyncio.sleep(0.3)
        assert portal.stats.by_method[ADD] == sent  # nothing the caller gave up was sent
        assert len(portal.documents) == sent


async def test_aclosing_mid_flight_never_sends_the_queued_adds() -> None:
    # One request per second: the first batch carries the adds queued at once, the others wait
    # in the queue for the next token when the consumer closes the stream.
    slow = RateLimit(burst=2, per_second=1.0)
    async with FakePortal(rate_limit=slow) as portal:
        template = portal.seed_template()
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=slow) as client:
            async with contextlib.aclosing(stream(client, template, 200)) as results:
                async with asyncio.timeout(10):
                    await anext(results)
            assert pipeline_tasks() == []
            sent = portal.stats.by_method[ADD]
            async with asyncio.timeout(10):
                await asyncio.sleep(1.5)  # the next token came: nothing may use it for an add
        assert portal.stats.by_method[ADD] == sent < 10, portal.stats.batch_sizes
        assert len(portal.documents) == sent


async def test_cancelling_the_consumer_then_leaving_the_client_returns() -> None:
    for attempt in range(6):
        async with FakePortal(rate_limit=FAST, method_costs={ADD: 0.01}) as portal:
            template = portal.seed_template()
            client = DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST)
            async with asyncio.timeout(5), client:

                async def consume() -> None:
                    async with contextlib.aclosing(
                        stream(client, template, 500)  # noqa: B023
                    ) as results:
                        async for _ in results:
                            await asyncio.sleep(3600)  # a consumer that stopped reading

                consumer = asyncio.get_running_loop().create_task(consume())
                await asyncio.sleep(0.05 * (attempt + 1))
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer
                assert pipeline_tasks() == []
            assert len(portal.documents) < 500
