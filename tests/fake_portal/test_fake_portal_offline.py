"""FakePortal's offline event queue: ``event.offline.get|list|clear|error`` and ``feature.get``."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from bitrix_docgen_async.testing import FakePortal
from tests.corpus import load
from tests.helpers import FakeClock, post

ADD = "ONCRMDOCUMENTGENERATORDOCUMENTADD"
UPDATE = "ONCRMDOCUMENTGENERATORDOCUMENTUPDATE"

pytestmark = pytest.mark.portal(rate_limit=None, pdf_delay=0.0, fake_clock=True)


async def app_call(
    http: aiohttp.ClientSession, portal: FakePortal, method: str, body: Any = None
) -> tuple[int, Any]:
    creds = portal.oauth
    payload = {**(body or {}), "auth": creds.access_token}
    return await post(http, creds.client_endpoint + method, payload)


async def bound(http: aiohttp.ClientSession, portal: FakePortal, **extra: Any) -> None:
    for event in (ADD, UPDATE):
        status, _ = await app_call(
            http, portal, "event.bind", {"event": event, "event_type": "offline", **extra}
        )
        assert status == 200


async def test_get_answers_the_documented_shape_and_reserves(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    await bound(http, portal)
    template = portal.seed_template()
    first, second = portal.seed_document(template), portal.seed_document(template, 2, 2)
    status, body = await app_call(http, portal, "event.offline.get", {"clear": 0, "limit": 1})
    assert status == 200
    example = load("events/event.offline.get.response.json")["result"]
    assert set(body["result"]) == set(example)
    row = body["result"]["events"][0]
    assert set(row) == set(example["events"][0])
    assert {k: type(v) for k, v in row.items()} == {
        k: type(v) for k, v in example["events"][0].items()
    }
    assert row["EVENT_DATA"]["FIELDS"]["ID"] == str(first)
    process_id = body["result"]["process_id"]
    assert isinstance(process_id, str) and process_id

    # A parallel reader gets the other row, never the reserved one.
    _, other = await app_call(http, portal, "event.offline.get", {"clear": 0})
    assert [r["EVENT_DATA"]["FIELDS"]["ID"] for r in other["result"]["events"]] == [str(second)]
    # The same process gets its unconfirmed row again.
    _, again = await app_call(
        http, portal, "event.offline.get", {"clear": 0, "process_id": process_id}
    )
    assert [r["ID"] for r in again["result"]["events"]] == [row["ID"]]

    _, listed = await app_call(http, portal, "event.offline.list")
    example_list = load("events/event.offline.list.response.json")
    assert set(listed) >= {"result", "total"} and listed["total"] == 2
    assert set(listed["result"][0]) == set(example_list["result"][0])
    assert {r["PROCESS_ID"] for r in listed["result"]} == {
        process_id,
        other["result"]["process_id"],
    }

    confirm = {"process_id": process_id, "message_id": [row["MESSAGE_ID"]]}
    status, cleared = await app_call(http, portal, "event.offline.clear", confirm)
    assert (status, cleared["result"]) == (200, True)
    assert [r["EVENT_DATA"]["FIELDS"]["ID"] for r in portal.offline_queue()] == [str(second)]


async def test_changes_coalesce_but_not_into_a_reserved_row(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    await bound(http, portal)
    template = portal.seed_template()
    document = portal.seed_document(template)
    _, taken = await app_call(http, portal, "event.offline.get")  # clear=1: the ADD is gone
    assert len(taken["result"]["events"]) == 1 and taken["result"]["process_id"] is None
    hook = portal.webhook_url + "crm.documentgenerator.document.update"
    for n in range(3):
        await post(http, hook, {"id": document, "values": {"Comment": str(n)}})
    assert [r["EVENT_NAME"] for r in portal.offline_queue()] == [UPDATE]
    _, reserved = await app_call(http, portal, "event.offline.get", {"clear": 0})
    await post(http, hook, {"id": document, "values": {"Comment": "later"}})
    queue = portal.offline_queue()
    assert len(queue) == 2  # the reserved row stays as it was; the new change is a new row
    assert [bool(r["PROCESS_ID"]) for r in queue] == [True, False]
    assert queue[0]["MESSAGE_ID"] == queue[1]["MESSAGE_ID"]
    assert reserved["result"]["events"][0]["MESSAGE_ID"] == queue[0]["MESSAGE_ID"]


async def test_error_rows_come_back_only_with_error_1(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    await bound(http, portal)
    portal.seed_document(portal.seed_template())
    _, got = await app_call(http, portal, "event.offline.get", {"clear": 0})
    process_id = got["result"]["process_id"]
    message = got["result"]["events"][0]["MESSAGE_ID"]
    status, body = await app_call(
        http, portal, "event.offline.error", {"process_id": process_id, "message_id": [message]}
    )
    assert (status, body["result"]) == (200, True)
    _, normal = await app_call(http, portal, "event.offline.get", {"clear": 0})
    assert normal["result"]["events"] == []
    _, errors = await app_call(http, portal, "event.offline.get", {"error": 1})
    assert [r["MESSAGE_ID"] for r in errors["result"]["events"]] == [message]
    assert portal.offline_queue() == []


@pytest.mark.portal(rate_limit=None, pdf_delay=0.0, fake_clock=True, access_token_lifetime=1e9)
async def test_reservations_are_deleted_after_30_days(
    portal: FakePortal, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await bound(http, portal)
    portal.seed_document(portal.seed_template())
    await app_call(http, portal, "event.offline.get", {"clear": 0})
    clock.advance(30 * 86400 - 1)
    _, listed = await app_call(http, portal, "event.offline.list")
    assert listed["total"] == 1
    clock.advance(1)
    _, listed = await app_call(http, portal, "event.offline.list")
    assert listed["total"] == 0


async def test_auth_connector_queues_and_onofflineevent(
    portal: FakePortal, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await bound(http, portal, auth_connector="sync")
    wakeup = "http://127.0.0.1:9/wake"
    signal = {"event": "ONOFFLINEEVENT", "handler": wakeup, "options": {"minTimeout": 5}}
    assert (await app_call(http, portal, "event.bind", signal))[0] == 200
    portal.event_delivery.pause()
    template = portal.seed_template()
    hook = portal.webhook_url + "crm.documentgenerator.document.add"
    add = {"templateId": template, "entityTypeId": 2, "entityId": 1, "auth_connector": "sync"}
    status, _ = await post(http, hook, add)
    assert status == 200
    assert portal.offline_queue() == []  # its own change is not recorded in its queue
    assert portal.pending_events == []  # ... so nothing to signal
    portal.seed_document(template)
    portal.seed_document(template, 2, 3)
    assert [r["CONNECTOR_ID"] for r in portal.offline_queue()] == ["sync", "sync"]
    signals = [p for p in portal.pending_events if p.binding.event == "ONOFFLINEEVENT"]
    assert len(signals) == 1  # minTimeout 5: the second change within it is not signalled
    assert portal.event_delivery.payload(signals[0])["data"] == []
    clock.advance(5)
    portal.seed_document(template, 2, 4)
    assert len([p for p in portal.pending_events if p.binding.event == "ONOFFLINEEVENT"]) == 2

    _, unsourced = await app_call(http, portal, "event.offline.get")
    assert unsourced["result"]["events"] == []  # without the key: only rows without a source
    _, mine = await app_call(http, portal, "event.offline.get", {"auth_connector": "sync"})
    assert len(mine["result"]["events"]) == 3


async def test_administrators_and_applications_only(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    status, body = await post(http, portal.webhook_url + "event.offline.get", {})
    assert (status, body["error"]) == (403, "WRONG_AUTH_TYPE")
    portal.state.admins.clear()
    for method in ("event.offline.get", "event.offline.list", "event.offline.clear"):
        status, body = await app_call(http, portal, method, {"process_id": "x"})
        denied = {"error": "ACCESS_DENIED", "error_description": "Access denied!"}
        assert (status, body) == (403, denied)
    status, body = await app_call(
        http, portal, "event.bind", {"event": ADD, "event_type": "offline"}
    )
    assert (status, body["error"]) == (403, "ACCESS_DENIED")


async def test_feature_get(portal: FakePortal, http: aiohttp.ClientSession) -> None:
    status, body = await app_call(http, portal, "feature.get", {"CODE": "rest_offline_extended"})
    assert (status, body["result"]) == (200, load("events/feature.get.response.json")["result"])
    portal.state.features["rest_auth_connector"] = False
    _, body = await app_call(http, portal, "feature.get", {"CODE": "rest_auth_connector"})
    assert body["result"] == {"value": "N"}
    status, body = await app_call(http, portal, "feature.get", {})
    assert (status, body["error"]) == (400, "CODE_EMPTY")
