"""The fake portal answers as the real portal does (issue 10 §2), checked over raw HTTP.

Each test names the documented answer it checks; the facts and their pages are in
protocol.md §5.3, §8.9 and §11 (official docs, and the official Python SDK's tests against a
live portal).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bitrix_docgen_async.core.encoding import parse_str
from bitrix_docgen_async.testing import FakePortal, build_docx
from tests.helpers import FakeClock

DOCS = "crm.documentgenerator.document."
TEMPLATES = "crm.documentgenerator.template."
NUMERATORS = "crm.documentgenerator.numerator."
DOCUMENT_ENTITY = "\\Bitrix\\DocumentGenerator\\Model\\Document"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(5000.0)


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakePortal]:
    async with FakePortal(rate_limit=None, clock=clock, pdf_delay=8.0) as running:
        yield running


async def post(
    http: aiohttp.ClientSession, url: str, body: Any = None, **options: Any
) -> tuple[int, Any]:
    async with http.post(url, json=body if body is not None else {}, **options) as response:
        return response.status, await response.json(content_type=None)


async def call(
    http: aiohttp.ClientSession, portal: FakePortal, method: str, body: Any = None
) -> tuple[int, Any]:
    return await post(http, portal.webhook_url + method, body)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def error(code: str, description: str) -> tuple[int, dict[str, str]]:
    return 400, {"error": code, "error_description": description}


# -- OAuth server (protocol.md §11: b24pysdk's live tests/integration/errors/test_errors_oauth.py)


async def test_oauth_wrong_secret_is_400_invalid_client_wrong_id_200_wrong_client(
    fake: FakePortal, http: aiohttp.ClientSession
) -> None:
    creds = fake.oauth
    grant = {
        "grant_type": "refresh_token",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
        "refresh_token": creds.refresh_token,
    }
    async with http.get(creds.oauth_url, params={**grant, "client_secret": "WRONG"}) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_client"
    async with http.get(creds.oauth_url, params={**grant, "client_id": "WRONG_ID"}) as response:
        assert response.status == 200
        body = await response.json()
        assert body["error"] == "wrong_client" and "access_token" not in body
    code = fake.issue_authorization_code()
    by_code = {"grant_type": "authorization_code", "client_id": "WRONG_ID", "code": code}
    async with http.get(creds.oauth_url, params=by_code) as response:
        assert (response.status, (await response.json())["error"]) == (200, "wrong_client")
    assert fake.stats.token_refreshes == 0
    # the refresh token survived the refused attempts
    async with http.get(creds.oauth_url, params=grant) as response:
        assert response.status == 200 and "access_token" in await response.json()


# -- templates ----------------------------------------------------------------------------------


async def test_template_list_without_a_match_is_an_empty_array(
    fake: FakePortal, http: aiohttp.ClientSession
) -> None:
    fake.seed_template()
    status, body = await call(http, fake, TEMPLATES + "list", {"filter": {"name": "nothing"}})
    assert status == 200
    assert body["result"] == {"templates": []}  # PHP's json_encode of an empty array
    assert body["total"] == 0
    _, body = await call(http, fake, TEMPLATES + "list")
    assert list(body["result"]["templates"]) == ["1"]  # an object keyed by id otherwise


@pytest.mark.parametrize("users", [None, [], ""])
async def test_template_add_without_users_gives_it_to_the_current_user(
    fake: FakePortal, http: aiohttp.ClientSession, users: Any
) -> None:
    numerator = fake.seed_numerator()
    fields: dict[str, Any] = {
        "name": "Invoice", "file": ["invoice.docx", b64(build_docx(("Comment",)))],
        "numeratorId": numerator, "region": "de", "entityTypeId": ["2"],
    }  # fmt: skip
    if users is not None:
        fields["users"] = users
    status, body = await call(http, fake, TEMPLATES + "add", {"fields": fields})
    assert status == 200, body
    assert body["result"]["template"]["users"] == {"U1": "U1"}  # the webhook's user
    template_id = body["result"]["template"]["id"]
    _, body = await call(http, fake, TEMPLATES + "list", {"select": ["id", "users"]})
    assert body["result"]["templates"][template_id]["users"] == ["U1"]
    # OAuth: the application's user
    creds = fake.oauth
    status, body = await post(
        http,
        creds.client_endpoint + TEMPLATES + "add",
        {"fields": fields, "auth": creds.access_token},
    )
    assert (status, body["result"]["template"]["users"]) == (200, {"U1": "U1"})


async def test_template_getfields_shows_a_given_number_as_value_and_default(
    fake: FakePortal, http: aiohttp.ClientSession
) -> None:
    template = fake.seed_template()
    query = {"id": template, "entityTypeId": 2, "entityId": 1}
    _, body = await call(
        http, fake, TEMPLATES + "getfields", {**query, "values": {"DocumentNumber": "2026-001"}}
    )
    number = body["result"]["templateFields"]["DocumentNumber"]
    assert (number["value"], number["default"]) == ("2026-001", "2026-001")
    _, body = await call(http, fake, TEMPLATES + "getfields", query)
    number = body["result"]["templateFields"]["DocumentNumber"]
    assert number["value"] == number["default"] == "1"  # the numerator's next number


# -- documents: values read back ----------------------------------------------------------------


async def test_values_read_back_hold_the_service_keys_only(
    fake: FakePortal, http: aiohttp.ClientSession
) -> None:
    template = fake.seed_template()
    add = {
        "templateId": template, "entityTypeId": 2, "entityId": 101, "stampsEnabled": 1,
        "values": {"DocumentNumber": "2026-001", "Comment": "x"},
    }  # fmt: skip
    _, body = await call(http, fake, DOCS + "add", add)
    document = body["result"]["document"]
    # add echoes what was passed (documents/crm-document-generator-document-add.md)
    assert document["values"] == {
        "productsTableVariant": "", "_creationMethod": "rest", "stampsEnabled": True,
        "DocumentNumber": "2026-001", "Comment": "x",
    }  # fmt: skip
    assert document["number"] == "2026-001"
    _, body = await call(http, fake, DOCS + "get", {"id": document["id"]})
    values = body["result"]["document"]["values"]
    assert list(values.items()) == [
        ("productsTableVariant", ""), ("_creationMethod", "rest"), ("stampsEnabled", True)
    ]  # fmt: skip
    _, body = await call(http, fake, DOCS + "list")
    values = body["result"]["documents"][0]["values"]
    assert list(values.items()) == [("_creationMethod", "rest"), ("stampsEnabled", True)]
    # the values still reach the document itself
    assert fake.state.documents[1].values["Comment"] == "x"


# -- document.upload (documents/crm-document-generator-document-upload.md) ----------------------


def upload_fields(**changes: Any) -> dict[str, Any]:
    fields = {
        "entityTypeId": 2, "entityId": 101, "fileContent": b64(build_docx(("Title",))),
        "region": "de", "title": "Product demonstration", "number": "2026-001",
        "pdfContent": b64(b"%PDF-1.4 from the caller\n%%EOF\n"),
    }  # fmt: skip
    fields.update(changes)
    return {key: value for key, value in fields.items() if value is not None}


async def test_upload_is_converted_like_any_document(
    fake: FakePortal, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    status, body = await call(http, fake, DOCS + "upload", {"fields": upload_fields()})
    assert status == 200
    document = body["result"]["document"]
    assert not {"pdfUrl", "imageUrl", "pdfUrlMachine", "imageUrlMachine"} & set(document)
    assert document["values"] == {"productsTableVariant": "", "_creationMethod": "rest"}
    _, body = await call(http, fake, DOCS + "get", {"id": document["id"]})
    assert "pdfUrl" not in body["result"]["document"]
    clock.advance(8.0)
    _, body = await call(http, fake, DOCS + "get", {"id": document["id"]})
    assert {"pdfUrl", "pdfUrlMachine"} <= set(body["result"]["document"])


@pytest.mark.parametrize(
    ("changes", "description"),
    [
        # the page's example: title and number given, the rest missing
        ({"entityTypeId": None, "fileContent": None, "region": None, "entityId": None},
         "Empty required fields: entityTypeId, fileContent, region, entityId"),
        ({"fileContent": None, "entityId": ""}, "Empty required fields: fileContent, entityId"),
        ({"region": None}, "Empty required fields: region"),
        ({"entityId": "abc"}, 'Wrong "entityId" field value'),
        ({"entityId": -5}, 'Wrong "entityId" field value'),
        ({"entityTypeId": 99}, 'Wrong "entityTypeId" field value'),
        ({"entityTypeId": "deal"}, 'Wrong "entityTypeId" field value'),
    ],
)  # fmt: skip
async def test_upload_errors_as_documented(
    fake: FakePortal, http: aiohttp.ClientSession, changes: dict[str, Any], description: str
) -> None:
    answer = await call(http, fake, DOCS + "upload", {"fields": upload_fields(**changes)})
    assert answer == error("0", description)
    assert fake.state.documents == {}


# -- numerator.delete (numerator/crm-document-generator-numerator-delete.md) --------------------


async def test_numerator_delete_without_id(fake: FakePortal, http: aiohttp.ClientSession) -> None:
    fake.seed_numerator()
    assert await call(http, fake, NUMERATORS + "delete") == error(
        "100", "Bitrix\\Main\\Numerator\\Numerator constructor must be is public"
    )
    assert len(fake.numerators) == 1


# -- document.list select and filter (documents/crm-document-generator-document-list.md) --------


async def test_list_select_of_an_unknown_field_is_the_documented_message(
    fake: FakePortal, http: aiohttp.ClientSession
) -> None:
    assert await call(http, fake, DOCS + "list", {"select": ["entityTypeId"]}) == error(
        "100",
        f"Unknown field definition ENTITY_TYPE_ID (ENTITY_TYPE_ID) for {DOCUMENT_ENTITY} Entity",
    )


async def list_ids(http: aiohttp.ClientSession, portal: FakePortal, filter: Any) -> list[int]:
    status, body = await call(http, portal, DOCS + "list", {"filter": filter})
    assert status == 200, body
    return [int(row["id"]) for row in body["result"]["documents"]]


async def test_list_filter_takes_camel_case_fields_and_the_nine_prefixes(
    fake: FakePortal, http: aiohttp.ClientSession
) -> None:
    first, second = fake.seed_template("A"), fake.seed_template("B")
    for entity in (10, 11, 12):
        fake.seed_document(first, 2, entity)
    fake.seed_document(second, 2, 10)
    # the docs' own filter example: entityTypeId and entityId
    assert await list_ids(http, fake, {"entityTypeId": 2, "entityId": 10}) == [1, 4]
    assert await list_ids(http, fake, {"templateId": second}) == [4]
    assert await list_ids(http, fake, {">=id": 2}) == [2, 3, 4]
    assert await list_ids(http, fake, {">id": 2}) == [3, 4]
    assert await list_ids(http, fake, {"<=id": 2}) == [1, 2]
    assert await list_ids(http, fake, {"<id": 2}) == [1]
    assert await list_ids(http, fake, {"@entityId": [11, 12]}) == [2, 3]
    assert await list_ids(http, fake, {"!@entityId": [11, 12]}) == [1, 4]
    assert await list_ids(http, fake, {"=entityId": 12}) == [3]
    assert await list_ids(http, fake, {"!=entityId": 10}) == [2, 3]
    assert await list_ids(http, fake, {"!templateId": first}) == [4]
    created = fake.documents[1]["createTime"]
    assert await list_ids(http, fake, {">=createTime": created}) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("ENTITY_TYPE_ID", "ENTITY_TYPE_ID"),
        ("entity_id", "ENTITY_ID"),
        ("EntityId", "ENTITY_ID"),
        ("%title", "%TITLE"),
        ("!%title", "%TITLE"),
        ("colour", "COLOUR"),
    ],
)
async def test_list_filter_other_spellings_and_operators_are_errors(
    fake: FakePortal, http: aiohttp.ClientSession, key: str, shown: str
) -> None:
    fake.seed_document(fake.seed_template(), 2, 10)
    assert await call(http, fake, DOCS + "list", {"filter": {key: "1"}}) == error(
        "100", f"Unknown field definition {shown} ({shown}) for {DOCUMENT_ENTITY} Entity"
    )


# -- addressing --------------------------------------------------------------------------------


async def test_a_trailing_slash_after_the_method_is_served_alike(
    fake: FakePortal, http: aiohttp.ClientSession
) -> None:
    fake.seed_numerator("Kept")
    plain = await call(http, fake, NUMERATORS + "list")
    slashed = await call(http, fake, NUMERATORS + "list/")
    dotted = await call(http, fake, NUMERATORS + "list.json/")
    assert plain[0] == slashed[0] == dotted[0] == 200
    assert plain[1]["result"] == slashed[1]["result"] == dotted[1]["result"]
    creds = fake.oauth
    status, body = await post(
        http, f"{creds.client_endpoint}{NUMERATORS}list/", {"auth": creds.access_token}
    )
    assert (status, body["result"]) == (200, plain[1]["result"])


async def test_urls_are_built_on_the_request_host(
    fake: FakePortal, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    template = fake.seed_template()
    document = fake.seed_document(template)
    clock.advance(8.0)
    proxied = {"Host": "docs.example.test:8443", "X-Forwarded-Proto": "https"}
    origin = "https://docs.example.test:8443"
    url = fake.webhook_url + DOCS + "get"
    status, body = await post(http, url, {"id": document}, headers=proxied)
    assert status == 200
    got = body["result"]["document"]
    for key in ("downloadUrl", "pdfUrl", "imageUrl", "downloadUrlMachine", "pdfUrlMachine"):
        assert got[key].startswith(origin + "/"), key
    _, body = await post(
        http, fake.webhook_url + DOCS + "enablepublicurl", {"id": document}, headers=proxied
    )
    assert body["result"]["publicUrl"].startswith(origin + "/pub/~")
    _, body = await post(
        http, fake.webhook_url + TEMPLATES + "get", {"id": template}, headers=proxied
    )
    assert body["result"]["template"]["downloadMachine"].startswith(origin + "/rest/")
    # a port mapping: plain http on the host the caller used
    _, body = await post(http, url, {"id": document}, headers={"Host": "localhost:18080"})
    machine = body["result"]["document"]["pdfUrlMachine"]
    assert machine.startswith("http://localhost:18080/rest/")
    # the URL still works once the proxy's address is swapped for the portal's own
    async with http.get(fake.base_url + machine.removeprefix("http://localhost:18080")) as reply:
        assert reply.status == 200 and (await reply.read()).startswith(b"%PDF-")
    # without a forwarding proxy the portal's own address comes back
    _, body = await post(http, url, {"id": document})
    assert body["result"]["document"]["downloadUrl"].startswith(fake.base_url + "/")
    # and the token endpoint names the client endpoint on the same host
    creds = fake.oauth
    grant = {
        "grant_type": "refresh_token", "client_id": creds.client_id,
        "client_secret": creds.client_secret, "refresh_token": creds.refresh_token,
    }  # fmt: skip
    async with http.get(creds.oauth_url, params=grant, headers=proxied) as response:
        token = await response.json()
    assert token["client_endpoint"] == origin + "/rest/"
    assert token["domain"] == "docs.example.test:8443"


# -- events (documents/events/on-crm-document-generator-document-*.md) --------------------------


class Receiver:
    """An HTTP handler on 127.0.0.1 that keeps every form POSTed to it."""

    def __init__(self) -> None:
        self.forms: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.forms.append(parse_str(await request.read()))
        self.arrived.set()
        return web.Response(text="ok")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/events", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/events"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def deliver_adds(
    portal: FakePortal, http: aiohttp.ClientSession, receiver: Receiver, count: int
) -> list[dict[str, Any]]:
    creds = portal.oauth
    bind = {
        "event": "ONCRMDOCUMENTGENERATORDOCUMENTADD",
        "handler": receiver.url,
        "auth": creds.access_token,
    }
    status, _ = await post(http, creds.client_endpoint + "event.bind", bind)
    assert status == 200
    template = portal.seed_template()
    for entity in range(1, count + 1):
        portal.seed_document(template, 2, entity)
    await portal.drain_events(timeout=10)
    assert len(receiver.forms) == count
    return receiver.forms


async def test_event_posts_carry_the_documented_scope(http: aiohttp.ClientSession) -> None:
    async with FakePortal(rate_limit=None) as portal, Receiver() as receiver:
        [form] = await deliver_adds(portal, http, receiver, 1)
    assert form["auth"]["scope"] == "crm, documentgenerator"
    assert form["auth"]["access_token"] and form["auth"]["expires_in"] == "3600"
    assert form["auth"]["application_token"] == portal.oauth.application_token


async def test_tokenless_events_come_without_an_access_token(
    http: aiohttp.ClientSession,
) -> None:
    async with FakePortal(rate_limit=None, tokenless_events=1.0) as portal, Receiver() as receiver:
        forms = await deliver_adds(portal, http, receiver, 3)
    for form in forms:
        assert "access_token" not in form["auth"] and "expires_in" not in form["auth"]
        assert form["auth"]["application_token"] == portal.oauth.application_token
        assert form["auth"]["member_id"] == portal.oauth.member_id
    mixed = FakePortal(rate_limit=None, tokenless_events=0.5, seed=3)
    async with mixed as portal, Receiver() as receiver:
        forms = await deliver_adds(portal, http, receiver, 40)
    tokenless = sum("access_token" not in form["auth"] for form in forms)
    assert 5 <= tokenless <= 35  # a seeded share, both kinds present
    with pytest.raises(ValueError, match="tokenless_events"):
        FakePortal(tokenless_events=1.5)
