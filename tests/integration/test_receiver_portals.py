"""One receiver, many portals: tokens by member_id, learned from ONAPPINSTALL, dropped on
ONAPPUNINSTALL."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bitrix_docgen_async import RateLimit
from bitrix_docgen_async.core.encoding import encode_query
from bitrix_docgen_async.receiver import (
    AppInstallEvent,
    AppUninstallEvent,
    DocumentEvent,
    DocumentEventType,
    EventReceiver,
)
from bitrix_docgen_async.testing import FakePortal
from bitrix_docgen_async.testing.records import EventBinding, PendingEvent
from tests.helpers import FAST_RETRY, PortalFactory, oauth_client

LIMIT = RateLimit(burst=50, per_second=50.0)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def serve(receiver: EventReceiver) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(receiver.app("/b24"), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/b24"


def delivery(portal: FakePortal, url: str, document_id: int = 5) -> dict[str, Any]:
    """The form ``portal`` would post for an ADD of ``document_id``."""
    binding = EventBinding(portal.application, DocumentEventType.ADD.value, url)
    fields = {"ID": str(document_id), "ENTITY_TYPE_ID": "2", "ENTITY_ID": "9"}
    return portal.event_delivery.payload(PendingEvent(binding, fields, 1_700_000_000))


async def post(http: aiohttp.ClientSession, url: str, form: dict[str, Any]) -> int:
    async with http.post(url, data=encode_query(form), headers=FORM) as response:
        return response.status


async def two_portals(start_portal: PortalFactory) -> tuple[FakePortal, FakePortal]:
    first = await start_portal(rate_limit=LIMIT, pdf_delay=0.0)
    second = await start_portal(rate_limit=LIMIT, pdf_delay=0.0)
    assert first.oauth.member_id != second.oauth.member_id
    return first, second


async def test_each_portal_is_checked_against_its_own_token(
    start_portal: PortalFactory, http: aiohttp.ClientSession
) -> None:
    portal_a, portal_b = await two_portals(start_portal)
    seen: list[DocumentEvent] = []
    installed: list[AppInstallEvent] = []
    removed: list[AppUninstallEvent] = []
    tokens: dict[str, str] = {}

    async def handler(event: DocumentEvent) -> None:
        seen.append(event)

    receiver = EventReceiver(
        tokens=tokens, handler=handler, on_install=installed.append, on_uninstall=removed.append
    )
    runner, url = await serve(receiver)
    try:
        token_a = portal_a.install_app(url)
        token_b = portal_b.install_app(url)
        await asyncio.gather(portal_a.drain_events(10), portal_b.drain_events(10))
        assert tokens == {portal_a.oauth.member_id: token_a, portal_b.oauth.member_id: token_b}
        assert {event.member_id for event in installed} == set(tokens)
        assert all(event.access_token and event.refresh_token for event in installed)

        # Both portals' real deliveries pass.
        for portal in (portal_a, portal_b):
            async with oauth_client(portal, rate_limit=LIMIT, retry=FAST_RETRY) as client:
                await client.events.bind(DocumentEventType.ADD, url)
                await client.documents.add(portal.seed_template(), 2, 1)
            await portal.drain_events(10)
        assert portal_a.stats.events_delivered == portal_b.stats.events_delivered == 2

        # A's token with B's member_id: refused.
        forged = delivery(portal_a, url)
        forged["auth"]["member_id"] = portal_b.oauth.member_id
        assert await post(http, url, forged) == 401
        assert receiver.stats.rejected["bad_token"] == 1

        # An install for a known portal with another token does not replace it.
        portal_a.install_app(url)
        await portal_a.drain_events(10)
        assert tokens[portal_a.oauth.member_id] == token_a
        assert receiver.stats.rejected["install_conflict"] == 1
        tokens[portal_a.oauth.member_id] = portal_a.tokens.application_token  # the app's call
        assert await post(http, url, delivery(portal_a, url)) == 200

        # After B's uninstall, B's events are refused.
        portal_b.uninstall_app(url)
        await portal_b.drain_events(10)
        assert portal_b.oauth.member_id not in tokens
        assert [event.member_id for event in removed] == [portal_b.oauth.member_id]
        assert await post(http, url, delivery(portal_b, url)) == 401
        assert receiver.stats.rejected["unknown_member"] == 1
    finally:
        await runner.cleanup()
    assert sorted(event.member_id for event in seen) == sorted(
        [portal_a.oauth.member_id] * 2 + [portal_b.oauth.member_id]
    )
    assert receiver.stats.app_events == {"install": 2, "uninstall": 1}


async def test_an_uninstall_signed_with_another_token_changes_nothing(
    start_portal: PortalFactory, http: aiohttp.ClientSession
) -> None:
    portal_a, portal_b = await two_portals(start_portal)
    lookups: list[str] = []
    store = {portal_a.oauth.member_id: "a" * 32, portal_b.oauth.member_id: "b" * 32}
    forgotten: list[str] = []

    async def lookup(member_id: str) -> str | None:
        lookups.append(member_id)
        return store.get(member_id)

    async def forget(member_id: str) -> None:
        forgotten.append(member_id)
        store.pop(member_id)

    async def handler(event: DocumentEvent) -> None:
        return None

    receiver = EventReceiver(tokens=lookup, forget_token=forget, handler=handler)
    runner, url = await serve(receiver)
    try:
        portal_b.uninstall_app(url)  # signed with B's real token, not the stored "b" * 32
        await portal_b.drain_events(10)
        assert forgotten == [] and receiver.stats.rejected["bad_token"] == 1
        portal_b.tokens.application_token = "b" * 32
        portal_b.uninstall_app(url)
        await portal_b.drain_events(10)
        assert forgotten == [portal_b.oauth.member_id]
    finally:
        await runner.cleanup()
    assert lookups == [portal_b.oauth.member_id] * 2


def test_one_token_or_many_not_both() -> None:
    async def handler(event: DocumentEvent) -> None:
        return None

    with pytest.raises(ValueError, match="either"):
        EventReceiver(application_token="t", tokens={}, handler=handler)
    with pytest.raises(ValueError, match="either"):
        EventReceiver(handler=handler)


def test_install_and_uninstall_examples_parse() -> None:
    from bitrix_docgen_async.receiver import parse_app_install, parse_app_uninstall
    from bitrix_docgen_async.receiver.parsing import read_form
    from tests.corpus import FIXTURES

    body = (FIXTURES / "events/other/ONAPPINSTALL.form").read_bytes()
    install = parse_app_install(read_form(body))
    assert install.member_id and install.application_token and install.refresh_token
    assert install.application_token not in repr(install)
    removal = parse_app_uninstall(
        read_form((FIXTURES / "events/other/ONAPPUNINSTALL.form").read_bytes())
    )
    assert removal.member_id
    assert removal.clean is False
