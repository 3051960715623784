"""Offline events end to end: bind offline -> changes while stopped -> the consumer takes them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import pytest
from aiohttp import web

from bitrix_docgen_async import DocgenClient, OfflineEventsUnavailableError, RateLimit
from bitrix_docgen_async.receiver import DocumentEvent, DocumentEventType, EventReceiver
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY, PortalFactory, oauth_client

LIMIT = RateLimit(burst=50, per_second=50.0)
ADD = "crm.documentgenerator.document.add"
ALL = [DocumentEventType.ADD, DocumentEventType.UPDATE, DocumentEventType.DELETE]

pytestmark = pytest.mark.portal(rate_limit=LIMIT, pdf_delay=0.0)


async def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait (bounded) until ``condition()`` holds; progress made by other tasks or processes."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def app_client(portal: FakePortal, **options: object) -> DocgenClient:
    return oauth_client(portal, rate_limit=LIMIT, retry=FAST_RETRY, **options)


async def bind_offline(portal: FakePortal, connector: str | None = None) -> None:
    async with app_client(portal) as client:
        for event in ALL:
            assert await client.events.bind(event, offline=True, auth_connector=connector)


async def consume(portal: FakePortal, **options: object) -> list[DocumentEvent]:
    seen: list[DocumentEvent] = []
    async with app_client(portal) as client:
        async for event in client.events.offline(until_empty=True, **options):  # type: ignore[arg-type]
            seen.append(event)
    return seen


async def test_2000_adds_while_stopped_are_handled_exactly_once(portal: FakePortal) -> None:
    await bind_offline(portal)
    template = portal.seed_template()
    ids = [portal.seed_document(template, 2, entity) for entity in range(1, 2001)]
    assert portal.stats.events_delivered == 0  # nothing is posted for offline bindings
    assert len(portal.offline_queue()) == 2000

    started = time.perf_counter()
    seen = await consume(portal)
    elapsed = time.perf_counter() - started

    counts = Counter(event.document_id for event in seen)
    assert sorted(counts) == ids and set(counts.values()) == {1}
    assert {event.event_type for event in seen} == {DocumentEventType.ADD}
    assert all(event.message_id and event.queue_id for event in seen)
    assert portal.offline_queue() == []
    by_method = portal.stats.by_method
    print(
        f"\n2000 offline events in {elapsed:.2f} s: {by_method['event.offline.get']} get, "
        f"{by_method['event.offline.clear']} clear"
    )
    assert by_method["event.offline.get"] == 41  # 40 batches of 50 and the empty look
    assert by_method["event.offline.clear"] == 40


async def test_five_updates_while_stopped_are_one_event_with_the_latest_state(
    portal: FakePortal,
) -> None:
    await bind_offline(portal)
    template = portal.seed_template()
    document_id = portal.seed_document(template, 2, 7)
    assert [e.document_id for e in await consume(portal)] == [document_id]

    async with app_client(portal) as client:
        for round_ in range(1, 6):
            await client.documents.update(document_id, values={"Comment": f"v{round_}"})
    rows = portal.offline_queue()
    assert len(rows) == 1 and rows[0]["EVENT_NAME"] == DocumentEventType.UPDATE.value

    seen = await consume(portal)
    assert [(e.event_type, e.document_id) for e in seen] == [
        (DocumentEventType.UPDATE, document_id)
    ]
    # The event carries ids only: the latest state is the document's, as the portal holds it.
    assert portal.state.documents[seen[0].document_id].values["Comment"] == "v5"


async def test_a_failed_step_is_not_confirmed_and_comes_again(portal: FakePortal) -> None:
    await bind_offline(portal)
    template = portal.seed_template()
    ids = [portal.seed_document(template, 2, entity) for entity in range(1, 11)]

    class Boom(Exception):
        pass

    handled: list[int] = []
    async with app_client(portal) as client:
        events = client.events.offline(batch=4)
        with pytest.raises(Boom):
            async with events:
                async for event in events:
                    if len(handled) == 6:
                        raise Boom
                    handled.append(event.document_id)
        process_id = events.process_id
    assert handled == ids[:6]
    # The first batch of four was confirmed; of the second, the two handled ones were not
    # confirmed yet when the step failed but are confirmed by the exit: only what failed stays.
    assert process_id is not None
    queue = portal.offline_queue()
    reserved = [row for row in queue if row["PROCESS_ID"] == process_id]
    assert len(reserved) == 2  # the failed one and the one after it in the same batch
    again = await consume(portal, process_id=process_id)
    assert sorted(e.document_id for e in again) == ids[6:]
    assert portal.offline_queue() == []


async def test_auth_connector_hides_own_changes_only(portal: FakePortal) -> None:
    await bind_offline(portal, connector="me")
    await bind_offline(portal)  # a queue without a source sees everything
    template = portal.seed_template()
    async with app_client(portal, auth_connector="me") as mine:
        own = await mine.documents.add(template, 2, 1)
        # Concurrent calls go out as one batch: each command carries the key.
        batched = await asyncio.gather(*(mine.documents.add(template, 2, n) for n in range(10, 15)))
        # An explicit batch carries it too.
        async with mine.batch() as explicit:
            chained = explicit.call(
                ADD, {"templateId": template, "entityTypeId": 2, "entityId": 20}
            )
        assert "auth_connector=me" in chained.encoded
        chained_id = int(chained.result()["document"]["id"])
    assert max(portal.stats.batch_sizes) >= 5
    async with app_client(portal) as other:
        foreign = await other.documents.add(template, 2, 2)
    seeded = portal.seed_document(template, 2, 3)

    seen = await consume(portal, auth_connector="me")
    assert sorted(e.document_id for e in seen) == sorted([foreign.id, seeded])
    unsourced = await consume(portal)
    everything = [own.id, *(d.id for d in batched), chained_id, foreign.id, seeded]
    assert sorted(e.document_id for e in unsourced) == sorted(everything)


async def test_without_the_confirm_mode_the_consumer_refuses_to_start(
    start_portal: PortalFactory,
) -> None:
    portal = await start_portal(
        rate_limit=LIMIT, pdf_delay=0.0, features={"rest_offline_extended": False}
    )
    await bind_offline(portal)
    template = portal.seed_template()
    document_id = portal.seed_document(template)
    async with app_client(portal) as client:
        with pytest.raises(OfflineEventsUnavailableError, match="allow_lossy") as refused:
            async for _ in client.events.offline(until_empty=True):
                pass
    assert refused.value.feature == "rest_offline_extended"
    assert portal.stats.by_method["event.offline.get"] == 0
    assert len(portal.offline_queue()) == 1

    lossy = await consume(portal, allow_lossy=True)
    assert [e.document_id for e in lossy] == [document_id]
    assert portal.stats.by_method["event.offline.clear"] == 0


async def test_auth_connector_needs_its_feature(start_portal: PortalFactory) -> None:
    portal = await start_portal(
        rate_limit=LIMIT, pdf_delay=0.0, features={"rest_auth_connector": False}
    )
    async with app_client(portal) as client:
        with pytest.raises(OfflineEventsUnavailableError, match="auth_connector"):
            async for _ in client.events.offline(auth_connector="me", until_empty=True):
                pass


async def test_offline_methods_are_for_administrators(portal: FakePortal) -> None:
    await bind_offline(portal)
    portal.state.admins.clear()
    async with app_client(portal) as client:
        with pytest.raises(Exception, match="Access denied") as denied:
            async for _ in client.events.offline(until_empty=True):
                pass
        assert getattr(denied.value, "status", None) == 403
        with pytest.raises(Exception, match="Access denied"):
            await client.events.bind(DocumentEventType.ADD, offline=True)


async def test_onofflineevent_wakes_the_consumer_through_the_receiver(portal: FakePortal) -> None:
    await bind_offline(portal)
    seen: list[DocumentEvent] = []
    async with app_client(portal) as client:
        # Polling is an hour away: only the ONOFFLINEEVENT signal can bring the events in time.
        events = client.events.offline(poll_interval=3600.0)

        async def ignore(event: DocumentEvent) -> None:
            return None

        receiver = EventReceiver(
            application_token=portal.oauth.application_token,
            handler=ignore,
            on_offline=events.wake,
        )
        runner = web.AppRunner(receiver.app("/wake"), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/wake"
        try:
            assert await client.events.bind_wakeup(url, min_timeout=0)

            async def take(count: int) -> None:
                async with events:
                    async for event in events:
                        seen.append(event)
                        if len(seen) == count:
                            break

            consumer = asyncio.create_task(take(3))
            # The consumer finds the queue empty and waits.
            await eventually(lambda: portal.stats.by_method["event.offline.get"] >= 1)
            template = portal.seed_template()
            ids = [portal.seed_document(template, 2, entity) for entity in (1, 2, 3)]
            async with asyncio.timeout(10):
                await consumer
        finally:
            await runner.cleanup()
    assert sorted(e.document_id for e in seen) == ids
    assert receiver.stats.app_events["offline_event"] >= 1
    assert portal.stats.by_method["event.offline.get"] >= 2  # the empty look, then the woken one
    assert portal.offline_queue() == []  # the end of ``async with`` confirmed the last one
