"""FakePortal's template methods over raw HTTP: file forms, shapes, errors, list, getfields."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pytest

from bitrix_docgen_async.testing import FakePortal, build_docx
from tests.corpus import docgen, load
from tests.helpers import post

TEMPLATES = "crm.documentgenerator.template."
DOCX = build_docx("Invoice {DocumentNumber}\nTo: {ClientName}\n{Comment}")


pytestmark = pytest.mark.portal(rate_limit=None, pdf_delay=0.0)


async def call(
    http: aiohttp.ClientSession, portal: FakePortal, method: str, body: Any = None
) -> tuple[int, Any]:
    name = TEMPLATES + method if "." not in method and method != "batch" else method
    return await post(http, portal.webhook_url + name, body)


def fixture(name: str) -> Any:
    """A template example of the corpus (tests/fixtures), e.g. ``"add.response"``."""
    return load(docgen(f"template.{name}"))


def assert_shape(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert set(actual) == set(expected)
    for key, value in expected.items():
        if value is not None and actual[key] is not None:
            assert type(actual[key]) is type(value), key


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def fields(numerator_id: int, **changes: Any) -> dict[str, Any]:
    base = {
        "name": "Template from file",
        "file": ["invoice.docx", b64(DOCX)],
        "numeratorId": numerator_id,
        "region": "de",
        "entityTypeId": ["2"],
        "users": ["UA"],
    }
    return {**base, **changes}


async def test_shapes_of_add_update_get_delete(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    numerator = portal.seed_numerator()
    status, body = await call(http, portal, "add", {"fields": fields(numerator)})
    assert status == 200
    added = body["result"]["template"]
    expected = fixture("add.response")["result"]["template"]
    assert_shape(added, expected)
    assert list(added) == list(expected)
    assert added["downloadMachine"].startswith(portal.webhook_url)
    assert added["download"].endswith(
        "action=crm.documentgenerator.template.download&SITE_ID=s1&id=1"
    )
    assert {k: added[k] for k in ("id", "numeratorId", "sort", "active", "withStamps")} == {
        "id": "1", "numeratorId": str(numerator), "sort": "500", "active": "Y", "withStamps": "N"
    }  # fmt: skip
    assert (added["users"], added["entityTypeId"], added["isDeleted"]) == ({"UA": "UA"}, ["2"], "N")
    assert portal.template_file(1) == DOCX

    change = {"name": "Template from file (updated)", "sort": 100, "active": "N", "users": []}
    status, body = await call(http, portal, "update", {"id": 1, "fields": change})
    assert status == 200
    updated = body["result"]["template"]
    assert_shape(updated, {**fixture("update.response")["result"]["template"], "users": []})
    assert (updated["name"], updated["sort"], updated["active"]) == (change["name"], "100", "N")
    assert updated["users"] == []  # PHP's empty array
    _, body = await call(http, portal, "get", {"id": "1"})
    got = body["result"]["template"]
    expected = fixture("get.response")["result"]["template"]
    assert_shape(got, {**expected, "users": []})
    assert list(got) == list(expected)
    status, body = await call(http, portal, "delete", {"id": 1})
    assert (status, body["result"]) == (200, None)
    assert portal.templates[1]["isDeleted"] == "Y"
    not_found = (400, {"error": "0", "error_description": "Template not found"})
    for method, body in [
        ("get", {"id": 1}),
        ("delete", {"id": 1}),
        ("update", {"id": 1, "fields": {}}),
    ]:
        assert await call(http, portal, method, body) == not_found
    assert await call(http, portal, "getfields", {"id": 1, "entityTypeId": 2}) == (
        400, {"error": "", "error_description": "Cannot get fields from deleted template"}
    )  # fmt: skip


async def test_default_users_is_the_caller(portal: FakePortal, http: aiohttp.ClientSession) -> None:
    payload = fields(portal.seed_numerator())
    del payload["users"]
    _, body = await call(http, portal, "add", {"fields": payload})
    assert body["result"]["template"]["users"] == {"U1": "U1"}


async def test_file_as_bare_base64_and_as_multipart(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    numerator = portal.seed_numerator()
    status, _ = await call(http, portal, "add", {"fields": fields(numerator, file=b64(DOCX))})
    assert status == 200
    other = build_docx(["Total"])
    form = aiohttp.FormData()
    for key, value in [
        ("fields[name]", "Multipart"),
        ("fields[numeratorId]", str(numerator)),
        ("fields[region]", "uk"),
        ("fields[entityTypeId][]", "2"),
        ("fields[entityTypeId][]", "31"),
    ]:
        form.add_field(key, value)
    form.add_field("fields[file]", other, filename="total.docx")
    async with http.post(portal.webhook_url + TEMPLATES + "add", data=form) as response:
        assert response.status == 200
        template = (await response.json())["result"]["template"]
    assert (template["name"], template["entityTypeId"]) == ("Multipart", ["2", "31"])
    assert portal.template_file(1) == DOCX
    assert portal.template_file(2) == other
    status, _ = await call(http, portal, "update", {"id": 2, "fields": {"file": b64(DOCX)}})
    assert status == 200
    assert portal.template_file(2) == DOCX


@pytest.mark.parametrize(
    ("change", "code", "description"),
    [
        ({"numeratorId": None}, "0", "Empty required fields: numeratorId"),
        ({"name": "", "region": "", "entityTypeId": []}, "0",
         "Empty required fields: name, region, entityTypeId"),
        ({"file": None}, "0", "Missing file content"),
        ({"file": ["x.docx", ""]}, "0", "Missing file content"),
        ({"file": "data:application/octet-stream;base64," + b64(DOCX)}, "0",
         "Could not save file"),
        ({"file": b64(DOCX)[:-8] + "\n" + b64(DOCX)[-8:]}, "0", "Could not save file"),
        ({"file": ["x.docx", b64(b"just text")]}, "0", "Could not save file"),
        ({"numeratorId": 404}, "100", "Could not construct parameter {numerator}"),
    ],
)  # fmt: skip
async def test_add_errors(
    portal: FakePortal,
    http: aiohttp.ClientSession,
    change: dict[str, Any],
    code: str,
    description: str,
) -> None:
    payload = {k: v for k, v in fields(portal.seed_numerator(), **change).items() if v is not None}
    assert await call(http, portal, "add", {"fields": payload}) == (
        400,
        {"error": code, "error_description": description},
    )
    assert portal.templates == {}


async def test_parameter_errors(portal: FakePortal, http: aiohttp.ClientSession) -> None:
    assert await call(http, portal, "add", {}) == (
        400,
        {"error": "100", "error_description": "Could not find value for parameter {fields}"},
    )
    constructor = "Bitrix\\DocumentGenerator\\Template constructor must be is public"
    for method in ("get", "update", "delete", "getfields"):
        assert await call(http, portal, method, {"fields": {}}) == (
            400,
            {"error": "100", "error_description": constructor},
        )
    template = portal.seed_template()
    status, body = await call(http, portal, "update", {"id": template, "fields": {"name": ""}})
    assert (status, body["error_description"]) == (400, "Empty required fields: name")
    assert portal.templates[template]["name"] == "Invoice"  # nothing changed


async def test_list_keyed_by_id_with_select_filter_order_and_pages(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    numerator = portal.seed_numerator()
    for index in range(60):
        portal.seed_template(f"t{index}", numerator_id=numerator, entity_type_ids=(2,))
    portal.seed_template("pipeline", numerator_id=numerator, entity_type_ids=("2_category_3", 31))
    await call(http, portal, "update", {"id": 5, "fields": {"active": "N"}})
    await call(http, portal, "delete", {"id": 6})
    _, body = await call(http, portal, "list")
    templates = body["result"]["templates"]
    assert (len(templates), body["total"], body["next"]) == (50, 60, 50)
    assert list(templates)[:6] == ["1", "2", "3", "4", "5", "7"]  # deleted ones are left out
    assert "users" not in templates["1"] and "entityTypeId" not in templates["1"]
    _, body = await call(http, portal, "list", {"start": 50})
    assert (len(body["result"]["templates"]), "next" in body) == (10, False)

    select = ["id", "name", "region", "users", "entityTypeId"]
    _, body = await call(http, portal, "list", {"select": select, "filter": {"id": 61}})
    row = body["result"]["templates"]["61"]
    expected = next(iter(fixture("list.response")["result"]["templates"].values()))
    assert_shape(row, expected)
    assert (row["users"], row["entityTypeId"]) == (["UA"], ["2_category_3", "31"])

    async def ids(**params: Any) -> list[str]:
        _, body = await call(http, portal, "list", params)
        return list(body["result"]["templates"])

    assert await ids(filter={"active": "N"}) == ["5"]
    assert await ids(filter={"isDeleted": "Y"}) == ["6"]
    assert await ids(filter={"entityTypeId": "2_category_3"}) == ["61"]
    assert await ids(filter={"entityTypeId": "31"}) == ["61"]
    assert len(await ids(filter={"entityTypeId": "2%", ">=id": 55})) == 7
    assert await ids(filter={"@id": [1, 3, 6]}) == ["1", "3"]
    assert await ids(filter={"<=id": 3, "!id": 2}) == ["1", "3"]
    assert await ids(filter={"name": "t1%", "<id": 13}, order={"id": "desc"}) == ["12", "11", "2"]
    assert await ids(filter={"%name": "PIPE"}) == ["61"]


async def test_getfields_from_the_docx_placeholders(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    numerator = portal.seed_numerator(template="N-{NUMBER}")
    template = portal.seed_template(numerator_id=numerator, docx=DOCX)
    params = {"id": template, "entityTypeId": 2, "entityId": 5, "values": {"Comment": "hi"}}
    status, body = await call(http, portal, "getfields", params)
    assert status == 200
    result = body["result"]["templateFields"]
    examples = fixture("getfields.response")["result"]["templateFields"]
    # the provider's fields first, each shaped like the corpus' field of the same kind
    like = {"DocumentNumber": "DocumentNumber", "MyCompanyUfLogo": "MyCompanyUfStamp"}
    like["MY_COMPANY"] = "BANK"  # a selector: a list of options as its value
    assert list(result)[: len(like)] == list(like)
    for name, example in like.items():
        assert_shape(result[name], examples[example])
    assert list(result)[len(like) :] == ["ClientName", "Comment"]
    assert (result["DocumentNumber"]["value"], result["Comment"]["value"]) == ("N-1", "hi")
    await call(http, portal, "getfields", params)
    assert portal.documents[portal.seed_document(template)]["number"] == "N-1"  # only a peek
    assert (await call(http, portal, "getfields", {"id": template}))[1] == {
        "error": "0", "error_description": "No provider for entityTypeId"
    }  # fmt: skip
