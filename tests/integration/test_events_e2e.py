"""Document events end to end: ensure_bound -> FakePortal delivery -> EventReceiver -> handler."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from aiohttp import web

from bitrix_docgen_async import DocgenClient, RateLimit, WrongAuthTypeError
from bitrix_docgen_async.models import EventBinding
from bitrix_docgen_async.receiver import DocumentEvent, DocumentEventType, EventReceiver
from bitrix_docgen_async.testing import FakePortal, build_docx
from tests.helpers import FAST_RETRY, oauth_client

LIMIT = RateLimit(burst=50, per_second=50.0)
ALL = [DocumentEventType.ADD, DocumentEventType.UPDATE, DocumentEventType.DELETE]


pytestmark = pytest.mark.portal(rate_limit=LIMIT, pdf_delay=0.0)


def app_client(portal: FakePortal) -> DocgenClient:
    return oauth_client(portal, rate_limit=LIMIT, retry=FAST_RETRY)


async def serve(receiver: EventReceiver, path: str) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(receiver.app(path), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}{path}"


async def test_500_adds_100_updates_50_deletes_reach_the_handler(portal: FakePortal) -> None:
    seen: list[DocumentEvent] = []

    async def handler(event: DocumentEvent) -> None:
        seen.append(event)

    receiver = EventReceiver(
        application_token=portal.oauth.application_token, handler=handler, concurrency=8
    )
    runner, url = await serve(receiver, "/bitrix/events")
    try:
        async with app_client(portal) as client:
            added = await client.events.ensure_bound(ALL, url)
            assert added == [EventBinding(event=e.value, handler=url) for e in ALL]
            assert await client.events.ensure_bound(ALL, url) == []  # idempotent
            assert len(await client.events.get()) == 3

            template = portal.seed_template()
            documents = await asyncio.gather(
                *(client.documents.add(template, 2, entity) for entity in range(1, 501))
            )
            ids = [d.id for d in documents]
            updated, deleted = ids[:100], ids[100:150]
            await asyncio.gather(
                *(client.documents.update(i, values={"Comment": "again"}) for i in updated)
            )
            await asyncio.gather(*(client.documents.delete(i) for i in deleted))

        await portal.drain_events(timeout=30)
        assert portal.stats.events_delivered == 650 and portal.stats.events_failed == 0
        assert portal.pending_events == []
    finally:
        await runner.cleanup()  # on_cleanup drains the receiver's queue

    assert receiver.stats.accepted == receiver.stats.handled == 650
    assert receiver.stats.received == 650 and not receiver.stats.rejected
    assert receiver.stats.handler_errors == receiver.stats.dropped == 0
    by_type = Counter(e.event_type for e in seen)
    assert by_type == {
        DocumentEventType.ADD: 500,
        DocumentEventType.UPDATE: 100,
        DocumentEventType.DELETE: 50,
    }

    def ids_of(kind: DocumentEventType) -> list[int]:
        return sorted(e.document_id for e in seen if e.event_type is kind)

    assert ids_of(DocumentEventType.ADD) == sorted(ids)
    assert ids_of(DocumentEventType.UPDATE) == sorted(updated)
    assert ids_of(DocumentEventType.DELETE) == sorted(deleted)
    entity_of = {d.id: d.entity_id for d in documents}
    assert all(e.entity_id == entity_of[e.document_id] for e in seen)
    assert {e.entity_type_id for e in seen} == {2}
    creds = portal.oauth
    assert {(e.member_id, e.application_token) for e in seen} == {
        (creds.member_id, creds.application_token)
    }
    assert {e.client_endpoint for e in seen} == {creds.client_endpoint}
    assert all(e.timestamp.tzinfo is not None and e.access_token for e in seen)
    assert len({e.handler_id for e in seen}) == 3  # one event_handler_id per binding


async def test_upload_fires_add_and_foreign_handlers_are_not_contacted(
    portal: FakePortal,
) -> None:
    seen: list[DocumentEvent] = []

    async def handler(event: DocumentEvent) -> None:
        seen.append(event)

    receiver = EventReceiver(application_token=portal.oauth.application_token, handler=handler)
    runner, url = await serve(receiver, "/hook")
    try:
        async with app_client(portal) as client:
            await client.events.ensure_bound(DocumentEventType.ADD, url)
            await client.events.bind(DocumentEventType.ADD, "https://handler.example/hook")
            await client.events.bind(DocumentEventType.ADD, url.replace("127.0.0.1", "localhost"))
            template = portal.seed_template()
            portal.seed_document(template, entity_id=7)
            uploaded = await client.documents.upload(
                2, 8, build_docx(["X"]), region="us", title="Act", number="A-1"
            )
        await portal.drain_events(timeout=10)
    finally:
        await runner.cleanup()
    outcomes = list(portal.event_delivery.outcomes)
    foreign = [o for o in outcomes if o.handler.startswith("https://handler.example")]
    assert [o.error for o in foreign] == ["not a loopback URL"] * 2
    assert portal.stats.events_delivered == 4 and portal.stats.events_failed == 2
    assert sorted(e.entity_id for e in seen) == [7, 7, 8, 8]
    assert uploaded.id in {e.document_id for e in seen}


async def test_error_answers_redirects_and_timeouts_fail_without_retry(
    portal: FakePortal,
) -> None:
    calls: Counter[str] = Counter()

    async def refuse(request: web.Request) -> web.Response:
        await request.read()
        calls["refuse"] += 1
        return web.Response(status=500)

    async def redirect(request: web.Request) -> web.Response:
        calls["redirect"] += 1
        # followed, it would show as a fourth call of /refuse per event
        return web.Response(status=307, headers={"Location": "/refuse"})

    async def hang(request: web.Request) -> web.Response:
        calls["hang"] += 1
        await asyncio.sleep(5)
        return web.Response()

    app = web.Application()
    for path, route in (("/refuse", refuse), ("/redirect", redirect), ("/hang", hang)):
        app.router.add_post(path, route)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    portal.event_delivery.timeout = 0.2
    try:
        async with app_client(portal) as client:
            for path in ("/refuse", "/redirect", "/hang"):
                await client.events.ensure_bound([DocumentEventType.ADD], base + path)
        template = portal.seed_template()
        for entity in range(1, 4):
            portal.seed_document(template, entity_id=entity)
        await portal.drain_events(timeout=10)
    finally:
        await runner.cleanup()
    assert calls == {"refuse": 3, "redirect": 3, "hang": 3}  # once each: no retries
    assert portal.stats.events_failed == 9 and portal.stats.events_delivered == 0
    outcomes = {(o.handler.removeprefix(base), o.status) for o in portal.event_delivery.outcomes}
    assert outcomes == {("/refuse", 500), ("/redirect", 307), ("/hang", None)}
    assert all(o.error for o in portal.event_delivery.outcomes if o.status is None)


async def test_ensure_bound_binds_only_what_is_missing(portal: FakePortal) -> None:
    url = "http://127.0.0.1:9/events"
    async with app_client(portal) as client:
        await client.events.bind(DocumentEventType.UPDATE, url)
        await client.events.bind(DocumentEventType.ADD, "http://127.0.0.1:9/other")
        await client.events.bind(DocumentEventType.ADD, url, auth_type=15)
        before = portal.stats.by_method["event.bind"]
        added = await client.events.ensure_bound(
            [
                "onCrmDocumentGeneratorDocumentAdd",
                DocumentEventType.UPDATE,
                "ONCRMDOCUMENTGENERATORDOCUMENTADD",
            ],
            url,
        )
        assert added == [EventBinding(event=DocumentEventType.ADD.value, handler=url)]
        assert portal.stats.by_method["event.bind"] == before + 1
        assert await client.events.ensure_bound(DocumentEventType.UPDATE, url) == []
        rows = {(b.event, b.handler, b.auth_type) for b in await client.events.get()}
        assert rows == {
            (DocumentEventType.UPDATE.value, url, 0),
            (DocumentEventType.ADD.value, "http://127.0.0.1:9/other", 0),
            (DocumentEventType.ADD.value, url, 15),
            (DocumentEventType.ADD.value, url, 0),
        }  # nothing unbound

        async def stale() -> list[EventBinding]:  # a concurrent ensure_bound got there first
            return []

        client.events.get = stale  # type: ignore[method-assign]
        assert await client.events.ensure_bound([DocumentEventType.UPDATE], url) == []
        with pytest.raises(ValueError, match="event_type"):
            await client.events.ensure_bound(["ONCRMDEALADD"], url)


async def test_ensure_bound_under_a_webhook_says_what_is_needed(portal: FakePortal) -> None:
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=LIMIT) as client:
        with pytest.raises(WrongAuthTypeError, match="from_oauth"):
            await client.events.ensure_bound(ALL, "http://127.0.0.1:9/events")
    assert portal.stats.requests == 0


async def test_paused_delivery_keeps_events_pending(portal: FakePortal) -> None:
    seen: list[DocumentEvent] = []

    async def handler(event: DocumentEvent) -> None:
        seen.append(event)

    receiver = EventReceiver(application_token=portal.oauth.application_token, handler=handler)
    runner, url = await serve(receiver, "/events")
    try:
        async with app_client(portal) as client:
            await client.events.ensure_bound(["onCrmDocumentGeneratorDocumentAdd"], url)
        portal.event_delivery.pause()
        template = portal.seed_template()
        document = portal.seed_document(template, entity_id=5)
        pending = portal.pending_events
        assert [(p.binding.handler, p.fields["ID"]) for p in pending] == [(url, str(document))]
        with pytest.raises(TimeoutError):
            await portal.drain_events(timeout=0.5)
        form = portal.event_delivery.payload(pending[0])
        assert form["event"] == DocumentEventType.ADD.value
        assert form["data"] == {"FIELDS": {"ID": str(document), "ENTITY_TYPE_ID": "2",
                                           "ENTITY_ID": "5"}}  # fmt: skip
        assert set(form["auth"]) == {
            "access_token", "expires_in", "scope", "domain", "server_endpoint", "status",
            "client_endpoint", "member_id", "application_token",
        }  # fmt: skip
        strings = [form["event_handler_id"], form["ts"], *form["auth"].values()]
        assert all(isinstance(value, str) and value for value in strings)
        portal.event_delivery.resume()
        await portal.drain_events(timeout=10)
    finally:
        await runner.cleanup()
    assert [e.document_id for e in seen] == [document]
    assert portal.stats.events_delivered == 1
