"""The receiver's workers survive whatever a handler does (issue 12, observation 11).

The portal does not retry a delivery that was answered 200 (protocol.md §7.1), so a worker that
dies leaves every later event answered and never handled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bitrix_docgen_async.core.encoding import encode_query
from bitrix_docgen_async.models.events import DocumentEvent, DocumentEventType
from bitrix_docgen_async.receiver import EventReceiver
from bitrix_docgen_async.receiver.workers import ReceiverStats, WorkQueue

TOKEN = "51856fefc120afa4b628cc82d3935cce"  # the docs' example application token


def event(document_id: int) -> DocumentEvent:
    return DocumentEvent(
        event_type=DocumentEventType.ADD,
        document_id=document_id,
        entity_type_id=2,
        entity_id=document_id,
        handler_id=None,
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        domain="example.bitrix24.com",
        member_id="m",
    )


class Raising:
    """Raises ``make(n)`` on the events whose ids are in ``bad``; records the others."""

    def __init__(self, bad: set[int], make: Callable[[int], BaseException]) -> None:
        self.bad = bad
        self.make = make
        self.handled: list[int] = []

    async def __call__(self, item: DocumentEvent) -> None:
        await asyncio.sleep(0)
        if item.document_id in self.bad:
            raise self.make(item.document_id)
        self.handled.append(item.document_id)


class Custom(BaseException):
    """A BaseException that is neither an Exception nor an interpreter exit."""


@pytest.mark.parametrize(
    "make",
    [
        lambda n: asyncio.CancelledError(f"handler gave up on {n}"),
        lambda n: Custom(f"odd failure on {n}"),
        lambda n: RuntimeError(f"cannot handle {n}"),
    ],
    ids=["CancelledError", "BaseException", "Exception"],
)
@pytest.mark.parametrize("concurrency", [1, 3])
async def test_later_events_are_handled_after_a_handler_raises(
    make: Callable[[int], BaseException], concurrency: int
) -> None:
    stats = ReceiverStats()
    handler = Raising({1}, make)
    queue = WorkQueue(handler, concurrency=concurrency, size=100, handler_timeout=None, stats=stats)
    for number in range(1, 21):
        assert queue.offer(event(number))
        await asyncio.sleep(0)  # let the workers take events one by one
    assert await queue.close(timeout=5) == 0  # drains the queue first
    assert sorted(handler.handled) == list(range(2, 21))
    assert (stats.handled, stats.handler_errors) == (19, 1)
    assert stats.dropped == 0


async def test_every_worker_raising_cancelled_error_still_handles_the_rest() -> None:
    stats = ReceiverStats()
    handler = Raising({1, 2, 3, 4}, lambda n: asyncio.CancelledError())
    queue = WorkQueue(handler, concurrency=2, size=100, handler_timeout=1.0, stats=stats)
    for number in range(1, 11):
        assert queue.offer(event(number))
    assert await queue.close(timeout=5) == 0
    assert sorted(handler.handled) == list(range(5, 11))
    assert stats.handler_errors == 4


async def test_a_dead_worker_is_replaced() -> None:
    stats = ReceiverStats()
    handler = Raising(set(), RuntimeError)
    queue = WorkQueue(handler, concurrency=2, size=100, handler_timeout=None, stats=stats)
    queue.start()
    victim = queue.workers[0]
    victim.cancel()  # a worker killed from outside (not by close())
    await asyncio.gather(victim, return_exceptions=True)
    assert victim not in queue.workers
    for number in range(1, 6):
        assert queue.offer(event(number))
        assert len(queue.workers) == 2 and victim not in queue.workers
        assert all(not worker.done() for worker in queue.workers)
    assert await queue.close(timeout=5) == 0
    assert sorted(handler.handled) == [1, 2, 3, 4, 5]
    assert queue.workers == []


async def test_close_still_cancels_a_handler_that_hangs() -> None:
    stats = ReceiverStats()
    started = asyncio.Event()

    async def hang(_: DocumentEvent) -> None:
        started.set()
        await asyncio.Event().wait()

    queue = WorkQueue(hang, concurrency=1, size=10, handler_timeout=None, stats=stats)
    assert queue.offer(event(1))
    await asyncio.wait_for(started.wait(), 5)
    assert await queue.close(timeout=0.05) == 1
    assert stats.dropped == 1 and queue.workers == []


async def test_through_http_events_after_a_cancelled_error_are_handled(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
) -> None:
    """The issue's case end to end: every delivery is answered 200, and each is handled."""
    handler = Raising({1}, lambda n: asyncio.CancelledError())
    receiver = EventReceiver(application_token=TOKEN, handler=handler, concurrency=1)
    client = await aiohttp_client(receiver.app("/events"))
    for number in range(1, 11):
        payload = {
            "event": "ONCRMDOCUMENTGENERATORDOCUMENTADD",
            "event_handler_id": "7",
            "data": {"FIELDS": {"ID": str(number), "ENTITY_TYPE_ID": "2", "ENTITY_ID": "5"}},
            "ts": "1700000000",
            "auth": {
                "domain": "example.bitrix24.com",
                "member_id": "m",
                "application_token": TOKEN,
            },
        }
        response = await client.post(
            "/events",
            data=encode_query(payload).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status == 200
    assert await receiver.close(timeout=5) == 0
    assert sorted(handler.handled) == list(range(2, 11))
    assert (receiver.stats.handled, receiver.stats.handler_errors) == (9, 1)
