"""Batched PDF readiness polling against the fake portal (conversion times scaled 1:5)."""

from __future__ import annotations

import asyncio

import pytest

from bitrix_docgen_async import DocgenClient, PollTimeoutError, RateLimit
from bitrix_docgen_async.core.pdf import PollSchedule
from bitrix_docgen_async.models import Document
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY

FAST = RateLimit(burst=50, per_second=200.0)
# Conversion takes 2 s +- 0.5 s; the first look comes 2 s after creation.
SCHEDULE = PollSchedule(min_conversion=2.0, interval=1.0, jitter=0.1)


async def seeded(portal: FakePortal, client: DocgenClient, count: int) -> list[Document]:
    template = portal.seed_template()
    ids = [portal.seed_document(template, 2, i + 1) for i in range(count)]
    docs = await asyncio.gather(*(client.documents.get(i) for i in ids))
    return list(docs)


async def test_3000_documents_cost_at_most_150_poll_requests() -> None:
    async with FakePortal(rate_limit=FAST, pdf_delay=2.0, pdf_jitter=0.5) as portal:
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, pdf_schedule=SCHEDULE, retry=FAST_RETRY
        ) as client:
            docs = await seeded(portal, client, 3000)
            assert not any(d.pdf_ready for d in docs)
            before = portal.stats.requests
            ready = await client.documents.wait_for_pdf(docs, timeout=30)
            polls = portal.stats.requests - before
            rounds = client.pdf_poller.rounds
        print(f"\n3000 documents: {polls} poll requests in {rounds} rounds")
        assert [d.id for d in ready] == [d.id for d in docs]
        assert all(d.pdf_ready and d.pdf_url_machine for d in ready)
        assert polls <= 150


async def test_failed_conversions_are_reported() -> None:
    async with FakePortal(rate_limit=FAST, pdf_delay=0.05, pdf_failure_rate=0.5, seed=3) as portal:
        async with DocgenClient.from_webhook(
            portal.webhook_url,
            rate_limit=FAST,
            pdf_schedule=PollSchedule(min_conversion=0.05, interval=0.05),
        ) as client:
            docs = await seeded(portal, client, 40)
            done = await client.documents.wait_for_pdf(docs, timeout=10)
        failed = [d for d in done if d.pdf_failed]
        assert 0 < len(failed) < 40
        assert all(d.transformation_error_code and d.transformation_error_message for d in failed)
        assert all(d.pdf_ready for d in done if not d.pdf_failed)


async def test_the_deadline_raises_with_the_pending_documents() -> None:
    async with FakePortal(rate_limit=FAST, pdf_delay=60.0) as portal:
        async with DocgenClient.from_webhook(
            portal.webhook_url,
            rate_limit=FAST,
            pdf_schedule=PollSchedule(min_conversion=0.0, interval=0.05),
        ) as client:
            docs = await seeded(portal, client, 5)
            with pytest.raises(PollTimeoutError) as caught:
                await client.documents.wait_for_pdf(docs, timeout=0.3)
        assert sorted(d.id if isinstance(d, Document) else d for d in caught.value.pending) == [
            d.id for d in docs
        ]


async def test_concurrent_waiters_share_the_polls() -> None:
    async with FakePortal(rate_limit=FAST, pdf_delay=0.2) as portal:
        async with DocgenClient.from_webhook(
            portal.webhook_url,
            rate_limit=FAST,
            pdf_schedule=PollSchedule(min_conversion=0.2, interval=0.2),
        ) as client:
            docs = await seeded(portal, client, 100)
            before = portal.stats.requests
            first, second, streamed = await asyncio.gather(
                client.documents.wait_for_pdf(docs, timeout=10),
                client.documents.wait_for_pdf(docs[:50], timeout=10),
                _collect(client, docs[50:]),
            )
            polls = portal.stats.requests - before
        assert len(first) == 100 and len(second) == 50 and len(streamed) == 50
        assert polls <= 4  # one round of 2 batches, maybe a second one


async def _collect(client: DocgenClient, docs: list[Document]) -> list[Document]:
    return [d async for d in client.documents.iter_pdf_ready(docs, timeout=10)]


async def test_ids_alone_are_polled_at_once(client: DocgenClient, portal: FakePortal) -> None:
    template = portal.seed_template()
    doc_id = portal.seed_document(template, 2, 1)
    with pytest.raises(PollTimeoutError):
        await client.documents.wait_for_pdf([doc_id], timeout=0.2)
    assert portal.stats.requests >= 1
