"""FakePortal's numerator methods: documented shapes, paging, errors; the method registry."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from bitrix_docgen_async.testing import CallContext, FakePortal, PortalError
from tests.corpus import docgen, load
from tests.helpers import post

PREFIX = "crm.documentgenerator.numerator."
GENERATOR = "Bitrix_Main_Numerator_Generator_SequentNumberGenerator"


# The portal with its default limits (bucket 50, 2 per second).
pytestmark = pytest.mark.portal()


async def call(
    http: aiohttp.ClientSession, portal: FakePortal, method: str, body: Any = None
) -> tuple[int, Any]:
    short = method in ("add", "get", "update", "delete", "list")
    url = portal.webhook_url + (PREFIX + method if short else method)
    return await post(http, url, body)


def fixture(name: str) -> Any:
    """A numerator example of the corpus (tests/fixtures), e.g. ``"add.response"``."""
    return load(docgen(f"numerator.{name}"))


async def test_documented_shapes(portal: FakePortal, http: aiohttp.ClientSession) -> None:
    # the inputs that gave the corpus' answers (tests/fixtures/README.md)
    fields = {"name": "Invoices 2026", "template": "INV-{NUMBER}"}
    fields["settings"] = {GENERATOR: {"length": 4}}
    _, added = await call(http, portal, "add", {"fields": fields})
    expected = fixture("add.response")["result"]
    assert added["result"] == {**expected, "numerator": {**expected["numerator"], "id": 1}}
    assert list(added["result"]["numerator"]) == list(expected["numerator"])
    settings = {GENERATOR: {"start": "500", "length": "4", "periodicBy": ""}}
    fields = {"name": "Invoices 2026 (EU)", "template": "EU-{NUMBER}", "settings": settings}
    _, updated = await call(http, portal, "update", {"id": "1", "fields": fields})
    expected = fixture("update.response")["result"]
    assert updated["result"] == {**expected, "id": "1"}
    assert list(updated["result"]) == list(expected)
    _, got = await call(http, portal, "get", {"id": 1})
    expected = fixture("get.response")["result"]
    assert got["result"] == {"numerator": {**expected["numerator"], "id": "1"}}
    assert list(got["result"]["numerator"]) == list(expected["numerator"])
    _, listed = await call(http, portal, "list")
    row = fixture("list.response")["result"]["numerators"][1]
    assert listed["result"] == {"numerators": [{**row, "id": "1"}]}
    assert listed["total"] == 1
    assert "next" not in listed
    assert listed["time"].keys() == fixture("list.response")["time"].keys()
    status, deleted = await call(http, portal, "delete", {"id": 1})
    assert (status, deleted["result"]) == (200, None)
    assert portal.numerators == {}


async def test_list_pages_by_fifty(portal: FakePortal, http: aiohttp.ClientSession) -> None:
    for i in range(120):
        portal.seed_numerator(f"n{i}")
    pages = []
    for start in (0, 50, 100):
        _, body = await call(http, portal, "list", {"start": start})
        pages.append((len(body["result"]["numerators"]), body["total"], body.get("next")))
    assert pages == [(50, 120, 50), (50, 120, 100), (20, 120, None)]
    _, body = await call(http, portal, "list", {"start": -1})
    assert (len(body["result"]["numerators"]), body["total"], "next" in body) == (50, 0, False)


@pytest.mark.parametrize(
    ("fields", "description"),
    [
        ({}, "Empty required fields: name, template"),
        ({"name": "x"}, "Empty required fields: template"),
        ({"template": "{NUMBER}", "name": ""}, "Empty required fields: name"),
    ],
)
async def test_add_required_fields(
    portal: FakePortal, http: aiohttp.ClientSession, fields: Any, description: str
) -> None:
    assert await call(http, portal, "add", {"fields": fields}) == (
        400,
        {"error": "0", "error_description": description},
    )


async def test_parameter_errors(portal: FakePortal, http: aiohttp.ClientSession) -> None:
    not_array = "Invalid value {} to match with parameter {fields}. Should be value of type array."
    assert await call(http, portal, "add", {"fields": ""}) == (
        400,
        {"error": "100", "error_description": not_array},
    )
    assert (await call(http, portal, "add", {}))[1][
        "error_description"
    ] == "Could not find value for parameter {fields}"
    unknown = (
        400,
        {"error": "100", "error_description": "Could not construct parameter {numerator}"},
    )
    for method, body in [
        ("get", {"id": 7}),
        ("update", {"id": 7, "fields": {}}),
        ("delete", {"id": 7}),
        ("get", {}),
    ]:
        assert await call(http, portal, method, body) == unknown


async def test_interface_numerators_are_read_only(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    numerator_id = portal.seed_numerator("Certificate", created_by_rest=False)
    assert (await call(http, portal, "get", {"id": numerator_id}))[0] == 200
    denied = (400, {"error": "DOCGEN_ACCESS_ERROR", "error_description": "Access denied"})
    assert (
        await call(http, portal, "update", {"id": numerator_id, "fields": {"name": "x"}}) == denied
    )
    assert await call(http, portal, "delete", {"id": numerator_id}) == denied
    assert portal.numerators[numerator_id]["name"] == "Certificate"


async def test_registry_accepts_sync_async_and_paged_handlers(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    def echo(ctx: CallContext, params: dict[str, Any]) -> Any:
        if "fail" in params:
            raise PortalError("", "You do not have permissions to modify templates")
        return {"method": ctx.method, "auth": ctx.auth.kind, "params": params}

    async def pages(ctx: CallContext, params: dict[str, Any]) -> tuple[Any, int, int | None]:
        return {"items": [1, 2]}, 3, 2

    portal.registry.register("Test.Echo", echo)
    portal.registry.register("test.pages", pages, paged=True)
    portal.registry.register("test.download", echo, batchable=False)
    status, body = await call(http, portal, "TEST.ECHO", {"a": [1]})
    assert (status, body["result"]) == (
        200,
        {"method": "test.echo", "auth": "webhook", "params": {"a": [1]}},
    )
    status, body = await call(http, portal, "test.echo", {"fail": 1})
    assert (status, body) == (
        400,
        {"error": "", "error_description": "You do not have permissions to modify templates"},
    )
    _, body = await call(http, portal, "test.pages")
    assert (body["result"], body["total"], body["next"]) == ({"items": [1, 2]}, 3, 2)
    cmd = {"p": "test.pages", "e": "test.echo?x[y]=$result[p][items][1]", "d": "test.download"}
    _, body = await call(http, portal, "batch", {"cmd": cmd})
    assert body["result"]["result"]["e"]["params"] == {"x": {"y": 2}}
    assert body["result"]["result_total"] == {"p": 3}
    assert body["result"]["result_next"] == {"p": 2}
    assert body["result"]["result_error"]["d"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
