"""After ``document.update`` only the new render's PDF counts (issue 12, observation 10).

protocol.md §11: right after an update ``pdfUrl`` may still point at the previous render. The
fake portal reproduces it: until the update's conversion is done, ``get`` and ``list`` keep the
previous render's links, bytes and ``pdfId``. The portal runs on a manual clock, so the test
decides when the new render is done; the client polls in real time, a few milliseconds apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bitrix_docgen_async import DocgenClient, DownloadError
from bitrix_docgen_async.core.pdf import PdfSince, PdfState, PollSchedule, pdf_state
from bitrix_docgen_async.models import Document
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY, FakeClock

SCHEDULE = PollSchedule(min_conversion=0.0, interval=0.01, max_interval=0.02, jitter=0.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
async def portal(clock: FakeClock) -> AsyncIterator[FakePortal]:
    async with FakePortal(rate_limit=None, clock=clock, pdf_delay=8.0) as running:
        yield running


@pytest.fixture
async def client(portal: FakePortal) -> AsyncIterator[DocgenClient]:
    async with DocgenClient.from_webhook(
        portal.webhook_url, rate_limit=None, pdf_schedule=SCHEDULE, retry=FAST_RETRY
    ) as docgen:
        yield docgen


async def converted(portal: FakePortal, client: DocgenClient, clock: FakeClock) -> Document:
    """A document whose first render is converted; returns it as ``get`` shows it."""
    doc_id = portal.seed_document(portal.seed_template(), 2, 7)
    clock.advance(8.0)
    document = await client.documents.get(doc_id)
    assert document.pdf_ready
    return document


async def polls(client: DocgenClient, rounds: int) -> None:
    start = client.pdf_poller.rounds
    async with asyncio.timeout(10):
        while client.pdf_poller.rounds < start + rounds:  # noqa: ASYNC110 - no event for rounds
            await asyncio.sleep(0.005)


async def test_wait_for_pdf_after_an_update_waits_for_the_new_render(
    portal: FakePortal, client: DocgenClient, clock: FakeClock
) -> None:
    document = await converted(portal, client, clock)
    old_pdf = portal.document_file(document.id, "pdf")
    updated = await client.documents.update(document.id, values={"Comment": "v2"})
    assert updated.pdf_url  # the previous render's link, as the portal shows it
    assert not updated.pdf_ready and updated.pdf_state() is PdfState.PENDING
    waiting = asyncio.create_task(client.documents.wait_for_pdf([updated], timeout=30))
    await polls(client, 3)
    assert not waiting.done()  # the stale pdfUrl did not count
    assert portal.document_file(document.id, "pdf") == old_pdf  # still served
    clock.advance(8.0)
    [ready] = await asyncio.wait_for(waiting, 10)
    assert ready.pdf_ready and ready.pdf_id is not None
    assert ready.pdf_since is not None and ready.pdf_id != ready.pdf_since.pdf_id
    new_pdf = portal.document_file(document.id, "pdf")
    assert new_pdf != old_pdf


async def test_iter_pdf_ready_and_download_after_an_update(
    portal: FakePortal, client: DocgenClient, clock: FakeClock, tmp_path: Path
) -> None:
    document = await converted(portal, client, clock)
    old_pdf = portal.document_file(document.id, "pdf")
    updated = await client.documents.update(document.id, values={"Comment": "v2"})
    with pytest.raises(DownloadError, match="not converted yet"):
        await client.documents.download(updated, tmp_path)
    got: list[Document] = []

    async def consume() -> None:
        async for ready in client.documents.iter_pdf_ready([updated], timeout=30):
            got.append(ready)

    task = asyncio.create_task(consume())
    await polls(client, 3)
    assert got == []
    clock.advance(8.0)
    await asyncio.wait_for(task, 10)
    [ready] = got
    path = await client.documents.download(ready, tmp_path)
    assert path.read_bytes() == portal.document_file(document.id, "pdf") != old_pdf


async def test_a_failed_render_after_an_update_is_reported(
    portal: FakePortal, client: DocgenClient, clock: FakeClock
) -> None:
    document = await converted(portal, client, clock)
    portal.conversion.failure_rate = 1.0
    updated = await client.documents.update(document.id)
    waiting = asyncio.create_task(client.documents.wait_for_pdf([updated], timeout=30))
    await polls(client, 2)
    assert not waiting.done()
    clock.advance(8.0)
    [done] = await asyncio.wait_for(waiting, 10)
    assert done.pdf_failed and done.pdf_state() is PdfState.FAILED and not done.pdf_ready


async def test_a_document_that_had_no_pdf_before_the_update(
    portal: FakePortal, client: DocgenClient, clock: FakeClock
) -> None:
    doc_id = portal.seed_document(portal.seed_template(), 2, 7)  # still converting
    updated = await client.documents.update(doc_id)
    assert updated.pdf_since == PdfSince(None)
    waiting = asyncio.create_task(client.documents.wait_for_pdf([updated], timeout=30))
    await polls(client, 2)
    assert not waiting.done()
    clock.advance(8.0)
    [ready] = await asyncio.wait_for(waiting, 10)
    assert ready.pdf_ready


def test_the_one_rule() -> None:
    url = "https://portal.example/rest/x"
    assert pdf_state(None, None, False) is PdfState.PENDING
    assert pdf_state("", "", False) is PdfState.PENDING
    assert pdf_state(url, None, False) is PdfState.READY
    assert pdf_state(None, url, False) is PdfState.READY
    assert pdf_state(url, url, True) is PdfState.FAILED
    since = PdfSince(pdf_id=287)
    assert pdf_state(url, url, False, since=since) is PdfState.PENDING  # a get view: no pdfId
    assert pdf_state(url, url, False, pdf_id=287, since=since) is PdfState.PENDING  # the old one
    assert pdf_state(url, url, False, pdf_id=299, since=since) is PdfState.READY
    assert pdf_state(None, None, False, pdf_id=299, since=since) is PdfState.PENDING
    assert pdf_state(None, None, True, since=since) is PdfState.FAILED
    assert pdf_state(url, None, False, pdf_id=5, since=PdfSince(None)) is PdfState.READY
    document = Document(
        id=1, title="t", number="1", template_id=1, entity_type_id=2, entity_id=1, pdf_url=url
    )
    assert document.pdf_ready and document.pdf_state() is PdfState.READY
    assert document.pdf_state(since) is PdfState.PENDING
    later = Document(
        id=1, title="t", number="1", template_id=1, entity_type_id=2, entity_id=1,
        pdf_url=url, pdf_id=299, pdf_since=since,
    )  # fmt: skip
    assert later.pdf_ready and not later.pdf_failed
