"""on_progress: a function or a coroutine function, a few calls per second, numbers to act on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from bitrix_docgen_async import DocgenClient, RateLimit
from bitrix_docgen_async.testing import FakePortal
from bitrix_docgen_async.workflows.bulk import Progress

FAST = RateLimit(burst=50, per_second=200.0)


async def test_a_coroutine_callback_gets_a_few_snapshots_with_total_rate_and_eta() -> None:
    seen: list[Progress] = []

    async def on_progress(progress: Progress) -> None:
        await asyncio.sleep(0)
        seen.append(progress)

    async with FakePortal(rate_limit=FAST) as portal:
        template = portal.seed_template()
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            results = [
                r
                async for r in client.documents.generate_many(
                    template_id=template,
                    entity_type_id=2,
                    entity_ids=[*range(1, 400), 0],
                    wait_pdf=False,
                    on_progress=on_progress,
                )
            ]
            elapsed = loop.time() - started
    assert len(results) == 400
    # at most a few calls per second (once per state change would be 800 here), one at the end
    assert 1 <= len(seen) <= 4 * elapsed + 2, (len(seen), elapsed)
    last = seen[-1]
    assert (last.total, last.done, last.failed, last.added) == (400, 399, 1, 399)
    assert last.rate > 0 and last.eta == 0.0 and last.elapsed > 0
    for earlier in seen[:-1]:
        assert earlier.total == 400 and earlier.done <= 399
        assert earlier.eta is None or earlier.eta >= 0


async def test_a_plain_callback_and_an_input_without_length() -> None:
    seen: list[Progress] = []

    async def ids() -> AsyncIterator[int]:
        for entity_id in range(1, 21):
            yield entity_id

    async with FakePortal(rate_limit=FAST) as portal:
        template = portal.seed_template()
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
            results = [
                r
                async for r in client.documents.generate_many(
                    template_id=template,
                    entity_type_id=2,
                    entity_ids=ids(),
                    wait_pdf=False,
                    on_progress=seen.append,
                )
            ]
    assert len(results) == 20
    assert seen and seen[-1].total is None and seen[-1].eta is None and seen[-1].done == 20
