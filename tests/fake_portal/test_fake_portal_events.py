"""FakePortal's ``event.bind``/``unbind``/``get`` and the queue of pending event deliveries."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from bitrix_docgen_async.testing import FakePortal
from tests.corpus import load
from tests.helpers import post

ADD_EVENT = "ONCRMDOCUMENTGENERATORDOCUMENTADD"
HANDLER = "https://handler.example/docgen"


pytestmark = pytest.mark.portal(rate_limit=None, pdf_delay=0.0)


async def app_call(
    http: aiohttp.ClientSession, portal: FakePortal, method: str, body: Any = None
) -> tuple[int, Any]:
    creds = portal.oauth
    payload = {**(body or {}), "auth": creds.access_token}
    return await post(http, creds.client_endpoint + method, payload)


async def hook_call(
    http: aiohttp.ClientSession, portal: FakePortal, method: str, body: Any = None
) -> tuple[int, Any]:
    return await post(http, portal.webhook_url + method, body)


def fixture(name: str) -> Any:
    """An ``event.*`` example of the corpus (tests/fixtures/events)."""
    return load(f"events/{name}")


async def test_bind_get_unbind(portal: FakePortal, http: aiohttp.ClientSession) -> None:
    status, body = await app_call(
        http,
        portal,
        "event.bind",
        {"event": "onCrmDocumentGeneratorDocumentAdd", "handler": HANDLER},
    )
    assert (status, body["result"]) == (200, fixture("event.bind.response.json")["result"])
    await app_call(
        http, portal, "event.bind", {"event": ADD_EVENT, "handler": HANDLER, "auth_type": 15}
    )
    await app_call(
        http, portal, "event.bind", {"event": "ONCRMDEALADD", "handler": HANDLER + "/deal"}
    )
    status, body = await app_call(http, portal, "event.get")
    assert status == 200
    expected_row = fixture("event.get.response.json")["result"][0]
    assert all(set(row) == set(expected_row) for row in body["result"])
    assert body["result"] == [
        {"event": ADD_EVENT, "handler": HANDLER, "auth_type": "0", "offline": 0},
        {"event": ADD_EVENT, "handler": HANDLER, "auth_type": "15", "offline": 0},
        {"event": "ONCRMDEALADD", "handler": HANDLER + "/deal", "auth_type": "0", "offline": 0},
    ]
    assert [b.auth_type for b in portal.bindings_for(ADD_EVENT.lower())] == [0, 15]

    status, body = await app_call(
        http, portal, "event.unbind", {"event": ADD_EVENT, "handler": HANDLER, "auth_type": 15}
    )
    assert (status, body["result"]) == (200, {"count": 1})
    assert body["result"].keys() == fixture("event.unbind.response.json")["result"].keys()
    _, body = await app_call(
        http, portal, "event.unbind", {"event": ADD_EVENT, "handler": "https://other"}
    )
    assert body["result"] == {"count": 0}
    _, body = await app_call(http, portal, "event.unbind", {"handler": HANDLER + "/deal"})
    assert body["result"] == {"count": 1}
    _, body = await app_call(http, portal, "event.get")
    assert [row["auth_type"] for row in body["result"]] == ["0"]
    _, body = await app_call(http, portal, "event.unbind")  # the documented catch-all
    assert body["result"] == {"count": 1}
    assert (await app_call(http, portal, "event.get"))[1]["result"] == []


async def test_offline_binding_needs_no_handler(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    status, _ = await app_call(
        http, portal, "event.bind", {"event": ADD_EVENT, "event_type": "offline"}
    )
    assert status == 200
    _, body = await app_call(http, portal, "event.get")
    assert body["result"] == [{"event": ADD_EVENT, "handler": "", "auth_type": "0", "offline": 1}]
    _, body = await app_call(http, portal, "event.unbind", {"event": ADD_EVENT})
    assert body["result"] == {"count": 0}  # online ones only, unless event_type=offline
    _, body = await app_call(
        http, portal, "event.unbind", {"event": ADD_EVENT, "event_type": "offline"}
    )
    assert body["result"] == {"count": 1}


@pytest.mark.parametrize(
    ("body", "code", "description"),
    [
        ({"event": "ONNOTHING", "handler": HANDLER}, "ERROR_EVENT_NOT_FOUND", "Event not found"),
        ({"handler": HANDLER}, "ERROR_ARGUMENT", "Argument 'EVENT' is null or empty"),
        ({"event": ADD_EVENT}, "ERROR_ARGUMENT", "Argument 'HANDLER' is null or empty"),
        ({"event": ADD_EVENT, "handler": HANDLER}, "ERROR_HANDLER_ALREADY_EXIST",
         "Handler already exists!"),
    ],
)  # fmt: skip
async def test_bind_errors(
    portal: FakePortal, http: aiohttp.ClientSession, body: Any, code: str, description: str
) -> None:
    await app_call(http, portal, "event.bind", {"event": ADD_EVENT.lower(), "handler": HANDLER})
    assert await app_call(http, portal, "event.bind", body) == (
        400,
        {"error": code, "error_description": description},
    )
    if code == "ERROR_EVENT_NOT_FOUND":
        assert fixture("event.bind.error.json") == {"error": code, "error_description": description}
    assert len(portal.bindings_for(ADD_EVENT)) == 1


async def test_webhooks_get_wrong_auth_type(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    wrong = (403, {"error": "WRONG_AUTH_TYPE", "error_description": "Application context required"})
    for method, body in [
        ("event.bind", {"event": ADD_EVENT, "handler": HANDLER}),
        ("event.unbind", {"event": ADD_EVENT, "handler": HANDLER}),
        ("event.get", {}),
    ]:
        assert await hook_call(http, portal, method, body) == wrong
    cmd = {"b": f"event.bind?event={ADD_EVENT}&handler={HANDLER}"}
    _, body = await hook_call(http, portal, "batch", {"cmd": cmd})
    assert body["result"]["result_error"]["b"] == wrong[1]
    assert portal.state.bindings == []


async def test_document_events_wait_for_delivery(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    for event in (
        ADD_EVENT,
        "ONCRMDOCUMENTGENERATORDOCUMENTUPDATE",
        "ONCRMDOCUMENTGENERATORDOCUMENTDELETE",
    ):
        await app_call(http, portal, "event.bind", {"event": event, "handler": HANDLER})
    await app_call(http, portal, "event.bind", {"event": ADD_EVENT, "event_type": "offline"})
    portal.event_delivery.pause()  # keep the events queued so that they can be inspected
    template = portal.seed_template()
    _, body = await hook_call(
        http, portal, "crm.documentgenerator.document.add",
        {"templateId": template, "entityTypeId": 2, "entityId": 77},
    )  # fmt: skip
    document = body["result"]["document"]["id"]
    await hook_call(http, portal, "crm.documentgenerator.document.update", {"id": document})
    await hook_call(http, portal, "crm.documentgenerator.document.delete", {"id": document})
    pending = portal.pending_events
    assert [p.binding.event for p in pending] == [
        ADD_EVENT, "ONCRMDOCUMENTGENERATORDOCUMENTUPDATE", "ONCRMDOCUMENTGENERATORDOCUMENTDELETE"
    ]  # fmt: skip
    assert {p.binding.handler for p in pending} == {HANDLER}
    assert pending[0].fields == {"ID": str(document), "ENTITY_TYPE_ID": "2", "ENTITY_ID": "77"}
    assert pending[0].binding.application == f"app:{portal.oauth.client_id}"
    pending.clear()
    assert portal.pending_events == []
