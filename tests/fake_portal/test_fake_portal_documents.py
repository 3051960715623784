"""FakePortal's document methods over raw HTTP: the tutorial flow, shapes, errors, the PDF
conversion on an injected clock, and the machine URLs that serve the files."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from typing import Any

import aiohttp
import pytest

from bitrix_docgen_async.testing import FakePortal, build_docx
from tests.corpus import docgen, load
from tests.helpers import FakeClock, post

DOCS = "crm.documentgenerator.document."
GENERATOR = "Bitrix_Main_Numerator_Generator_SequentNumberGenerator"
#: Absent until the PDF conversion is done.
PLAIN_FILE_URLS = frozenset({"pdfUrl", "imageUrl"})


pytestmark = pytest.mark.portal(rate_limit=None, fake_clock=True, pdf_delay=8.0)


async def call(
    http: aiohttp.ClientSession, portal: FakePortal, method: str, body: Any = None
) -> tuple[int, Any]:
    short = "." not in method and method != "batch"
    name = DOCS + method if short else method
    return await post(http, portal.webhook_url + name, body)


async def fetch(http: aiohttp.ClientSession, url: str) -> tuple[int, bytes, Any]:
    headers = {"User-Agent": "tests/1.0", "Accept": "*/*"}
    async with http.get(url, headers=headers) as response:
        return response.status, await response.read(), response.headers


def fixture(name: str) -> Any:
    """A docgen example of the corpus (tests/fixtures), e.g. ``"document.add.response"``."""
    return load(docgen(name))


def assert_shape(
    actual: dict[str, Any], expected: dict[str, Any], absent: frozenset[str] = frozenset()
) -> None:
    """Same keys (but ``absent``) and, where both are not null, the same JSON types."""
    assert set(actual) == set(expected) - absent
    for key, value in expected.items():
        if key in actual and value is not None and actual[key] is not None:
            assert type(actual[key]) is type(value), key


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def document_xml(docx: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(docx)) as archive:
        assert {"[Content_Types].xml", "_rels/.rels"} <= set(archive.namelist())
        return archive.read("word/document.xml").decode()


# -- the documented flow ------------------------------------------------------------------


async def test_tutorial_flow(
    portal: FakePortal, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    _, body = await call(
        http, portal, "crm.documentgenerator.numerator.add",
        {"fields": {"name": "Numerator from REST", "template": "{NUMBER}"}},
    )  # fmt: skip
    numerator = body["result"]["numerator"]
    assert_shape(numerator, fixture("numerator.add.response")["result"]["numerator"])
    template_docx = build_docx("Deal {DocumentNumber}\nNote: {Comment}\n{Unfilled}")
    fields = {
        "name": "Demonstration product implementation",
        "file": ["template.docx", b64(template_docx)],
        "numeratorId": numerator["id"],
        "region": "de",
        "users": ["UA"],
        "entityTypeId": ["2"],
    }
    status, body = await call(
        http, portal, "crm.documentgenerator.template.add", {"fields": fields}
    )
    assert status == 200
    template = body["result"]["template"]
    assert_shape(template, fixture("template.add.response")["result"]["template"])
    assert (template["numeratorId"], template["users"]) == (str(numerator["id"]), {"UA": "UA"})

    values = {"Comment": "Fragile <handle> & care"}
    add = {"templateId": template["id"], "entityTypeId": "2", "entityId": 8287, "values": values}
    status, body = await call(http, portal, "add", add)
    assert status == 200
    added = body["result"]["document"]
    assert_shape(added, fixture("document.add.response")["result"]["document"], PLAIN_FILE_URLS)
    assert (added["id"], added["createdBy"], added["number"]) == (1, 1, "1")
    assert added["title"] == "Demonstration product implementation 1"
    assert (added["templateId"], added["entityTypeId"], added["entityId"]) == (
        template["id"],
        "2",
        "8287",
    )
    assert added["values"] == {
        "productsTableVariant": "", "_creationMethod": "rest", "stampsEnabled": False, **values
    }  # fmt: skip
    text = document_xml(portal.document_file(1))
    assert "Deal 1" in text and "Fragile &lt;handle&gt; &amp; care" in text
    assert "{" not in text

    clock.advance(8.0)
    _, body = await call(http, portal, "get", {"id": 1})
    got = body["result"]["document"]
    assert_shape(got, fixture("document.get.response")["result"]["document"])
    assert (got["id"], got["createdBy"], got["updatedBy"]) == ("1", "1", None)
    view = portal.documents[1]
    assert {k: v for k, v in view.items() if "Machine" not in k} == {
        k: v for k, v in got.items() if "Machine" not in k
    }

    flt = {"filter": {"entityTypeId": 2, "entityId": 8287}}
    _, body = await call(http, portal, "list", flt)
    assert (body["total"], "next" in body) == (1, False)
    row = body["result"]["documents"][0]
    assert_shape(row, fixture("document.list.response")["result"]["documents"][0])
    assert (row["fileId"], row["id"]) == ("1", "1")

    update = {"id": 1, "values": {"Comment": "Changed", "DocumentNumber": "A-7"}}
    status, body = await call(http, portal, "update", update)
    assert status == 200
    updated = body["result"]["document"]
    # the previous render's links stay until the update's conversion is done, as in the docs
    assert_shape(updated, fixture("document.update.response")["result"]["document"])
    assert (updated["number"], updated["createdBy"], updated["updatedBy"]) == ("A-7", None, 1)
    assert updated["title"] == added["title"]
    assert "Changed" in document_xml(portal.document_file(1))

    _, body = await call(http, portal, "enablepublicurl", {"id": 1, "status": 1})
    public = body["result"]["publicUrl"]
    assert public.startswith(portal.base_url + "/pub/~")
    assert (await call(http, portal, "get", {"id": 1}))[1]["result"]["document"][
        "publicUrl"
    ] == public
    assert (await call(http, portal, "enablepublicurl", {"id": 1, "status": 0}))[1][
        "result"
    ] is None
    assert (await call(http, portal, "get", {"id": 1}))[1]["result"]["document"][
        "publicUrl"
    ] is None

    upload = {
        "entityTypeId": 2, "entityId": 8287, "fileContent": b64(build_docx("Signed copy")),
        "region": "de", "title": "Signed contract", "number": "C-1",
    }  # fmt: skip
    status, body = await call(http, portal, "upload", {"fields": upload})
    assert status == 200
    uploaded = body["result"]["document"]
    assert_shape(uploaded, fixture("document.upload.response")["result"]["document"])
    assert uploaded["values"] == {"productsTableVariant": "", "_creationMethod": "rest"}
    assert (uploaded["id"], uploaded["title"], uploaded["number"]) == (
        "2",
        "Signed contract",
        "C-1",
    )
    assert portal.document_file(2) == base64.b64decode(upload["fileContent"])
    assert uploaded["templateId"] != template["id"]
    _, body = await call(http, portal, "crm.documentgenerator.template.list")
    assert list(body["result"]["templates"]) == [template["id"]]  # the upload template is hidden

    status, body = await call(http, portal, "delete", {"id": 1})
    assert (status, body["result"]) == (200, None)
    assert (await call(http, portal, "get", {"id": 1}))[1] == {
        "error": "0", "error_description": "Document not found"
    }  # fmt: skip
    assert list(portal.documents) == [2]


async def test_batch_with_string_parameters_and_references(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    template_id = portal.seed_template()
    cmd = {
        "a": f"{DOCS}add?templateId={template_id}&entityTypeId=2&entityId=5&values[Comment]=x",
        "g": f"{DOCS}get?id=$result[a][document][id]",
        "l": f"{DOCS}list?filter[entityId]=$result[g][document][entityId]",
    }
    _, body = await call(http, portal, "batch", {"cmd": cmd})
    inner = body["result"]
    assert inner["result_error"] == []
    assert inner["result"]["a"]["document"]["id"] == 1
    assert inner["result"]["a"]["document"]["values"]["Comment"] == "x"
    assert inner["result_total"] == {"l": 1}


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body", "code", "description"),
    [
        ("add", {"entityTypeId": 2, "entityId": 1}, "100",
         "Bitrix\\DocumentGenerator\\Template constructor must be is public"),
        ("add", {"templateId": 99, "entityTypeId": 2, "entityId": 1}, "0", "Template not found"),
        ("add", {"templateId": 1, "entityTypeId": 3, "entityId": 1}, "0",
         "No provider for entityTypeId"),
        ("add", {"templateId": 1, "entityTypeId": 99, "entityId": 1}, "0",
         "No provider for entityTypeId"),
        ("add", {"templateId": 1, "entityId": 1}, "0", "No provider for entityTypeId"),
        ("add", {"templateId": 1, "entityTypeId": 2}, "0", 'Empty required parameter "value"'),
        ("add", {"templateId": 1, "entityTypeId": 2, "entityId": 1, "values": "x"}, "100",
         "Invalid value {x} to match with parameter {values}. Should be value of type array."),
        ("get", {}, "100", "Bitrix\\DocumentGenerator\\Document constructor must be is public"),
        ("get", {"id": 42}, "0", "Document not found"),
        ("update", {"id": 42}, "0", "Document not found"),
        ("delete", {}, "100", "Bitrix\\DocumentGenerator\\Document constructor must be is public"),
        ("getfields", {"id": 42}, "0", "Document not found"),
        ("enablepublicurl", {"id": 42}, "0", "Document not found"),
        ("list", {"select": ["*", "entityTypeId"]}, "100",
         "Unknown field definition ENTITY_TYPE_ID (ENTITY_TYPE_ID) for "
         "\\Bitrix\\DocumentGenerator\\Model\\Document Entity"),
        ("list", {"filter": {"colour": "red"}}, "100",
         "Unknown field definition COLOUR (COLOUR) for "
         "\\Bitrix\\DocumentGenerator\\Model\\Document Entity"),
        ("upload", {}, "100", "Could not find value for parameter {fields}"),
        ("upload", {"fields": ""}, "100",
         "Invalid value {} to match with parameter {fields}. Should be value of type array."),
        ("upload", {"fields": {"entityTypeId": 2, "entityId": 1, "fileContent": "x"}}, "0",
         "Empty required fields: region, title, number"),
    ],
)  # fmt: skip
async def test_documented_errors(
    portal: FakePortal,
    http: aiohttp.ClientSession,
    method: str,
    body: dict[str, Any],
    code: str,
    description: str,
) -> None:
    portal.seed_template(entity_type_ids=(2,))
    assert await call(http, portal, method, body) == (
        400,
        {"error": code, "error_description": description},
    )
    assert portal.state.documents == {}


async def test_deleted_template_and_missing_numerator(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    kept, deleted = portal.seed_template(), portal.seed_template("Old")
    assert (await call(http, portal, "crm.documentgenerator.template.delete", {"id": deleted}))[
        0
    ] == 200
    add = {"templateId": deleted, "entityTypeId": 2, "entityId": 1}
    assert (await call(http, portal, "add", add))[1] == {
        "error": "0", "error_description": "Cannot create document on deleted template"
    }  # fmt: skip
    numerator = int(portal.templates[kept]["numeratorId"])
    await call(http, portal, "crm.documentgenerator.numerator.delete", {"id": numerator})
    add = {"templateId": kept, "entityTypeId": 2, "entityId": 1}
    assert (await call(http, portal, "add", add))[1] == {
        "error": "0", "error_description": "Error getting next number"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "description"),
    [
        ({"fileContent": ""}, "Empty required fields: fileContent"),
        ({"fileContent": "not base64!"}, "Could not save file"),
        ({"fileContent": "data:application/zip;base64,UEsFBg=="}, "Could not save file"),
        ({"fileContent": b64(b"plain text, not a zip")}, "Could not save file"),
        ({"pdfContent": "%PDF"}, "Could not save file"),
        ({"entityTypeId": "lead"}, 'Wrong "entityTypeId" field value'),
        ({"entityId": "0"}, 'Wrong "entityId" field value'),
    ],
)
async def test_upload_file_errors(
    portal: FakePortal, http: aiohttp.ClientSession, fields: dict[str, Any], description: str
) -> None:
    good = {
        "entityTypeId": 2, "entityId": 1, "fileContent": b64(build_docx("x")),
        "region": "de", "title": "T", "number": "1",
    }  # fmt: skip
    status, body = await call(http, portal, "upload", {"fields": {**good, **fields}})
    assert (status, body) == (400, {"error": "0", "error_description": description})


# -- numbering, values, fields ---------------------------------------------------------------


async def test_numbers_come_from_the_shared_numerator(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    settings = {GENERATOR: {"start": 100, "step": 5, "length": 5, "padString": "0"}}
    _, body = await call(
        http, portal, "crm.documentgenerator.numerator.add",
        {"fields": {"name": "Invoices", "template": "INV-{NUMBER}", "settings": settings}},
    )  # fmt: skip
    numerator = body["result"]["numerator"]["id"]
    first = portal.seed_template("Invoice", numerator_id=numerator)
    second = portal.seed_template("Act", numerator_id=numerator, entity_type_ids=("2_category_3",))
    numbers = []
    for template in (first, second, first):
        _, body = await call(
            http, portal, "add", {"templateId": template, "entityTypeId": 2, "entityId": 7}
        )
        numbers.append(body["result"]["document"]["number"])
    assert numbers == ["INV-00100", "INV-00105", "INV-00110"]
    given = {"DocumentNumber": "M-1"}
    _, body = await call(
        http,
        portal,
        "add",
        {"templateId": first, "entityTypeId": 2, "entityId": 7, "values": given},
    )
    assert body["result"]["document"]["title"] == "Invoice M-1"
    assert portal.seed_document(first) == 5
    assert portal.documents[5]["number"] == "INV-00115"  # an explicit number used up none


async def test_getfields_is_a_what_if(portal: FakePortal, http: aiohttp.ClientSession) -> None:
    template = portal.seed_template(placeholders=("DocumentNumber", "Comment", "ClientName"))
    document = portal.seed_document(template, values={"Comment": "stored"})
    _, body = await call(
        http, portal, "getfields", {"id": document, "values": {"ClientName": "Ann"}}
    )
    fields = body["result"]["documentFields"]
    examples = fixture("document.getfields.response")["result"]["documentFields"]
    # each field shaped like the corpus' field of the same kind
    like = {"DocumentNumber": "DocumentNumber", "MyCompanyUfLogo": "MyCompanyUfStamp"}
    like |= {"MY_COMPANY": "BANK", "Comment": "Comment"}
    assert set(like) <= set(fields)
    for name, example in like.items():
        assert_shape(fields[name], examples[example])
    assert fields["DocumentNumber"]["value"] == "1"
    assert (fields["Comment"]["value"], fields["ClientName"]["value"]) == ("stored", "Ann")
    assert "ClientName" not in portal.documents[document]["values"]


# -- list ------------------------------------------------------------------------------------


async def test_list_pages_filters_and_order(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    deals, leads = portal.seed_template(), portal.seed_template("Lead", entity_type_ids=(1,))
    for index in range(110):
        portal.seed_document(deals, 2, index % 3 + 1)
    for _ in range(10):
        portal.seed_document(leads, 1, 1)
    pages = []
    for start in (0, 50, 100):
        _, body = await call(http, portal, "list", {"start": start})
        pages.append((len(body["result"]["documents"]), body["total"], body.get("next")))
    assert pages == [(50, 120, 50), (50, 120, 100), (20, 120, None)]

    async def ids(**params: Any) -> list[int]:
        _, body = await call(http, portal, "list", params)
        return [int(row["id"]) for row in body["result"]["documents"]]

    assert await ids(filter={">=id": 115}) == [115, 116, 117, 118, 119, 120]
    assert await ids(filter={"<id": 4, ">id": 1}) == [2, 3]
    assert await ids(filter={"@id": [3, 7, 999]}) == [3, 7]
    assert await ids(filter={"entityTypeId": 1, "!id": 111}, order={"id": "desc"}) == list(
        range(120, 111, -1)
    )
    assert len(await ids(filter={"templateId": deals, "!entityId": 1})) == 50  # first page
    assert (await ids(filter={"entityId": 3, "<=id": 9})) == [3, 6, 9]
    _, body = await call(http, portal, "list", {"select": ["id", "number"], "filter": {"id": 1}})
    assert body["result"]["documents"] == [{"id": "1", "number": "1"}]


# -- PDF conversion ----------------------------------------------------------------------------


async def test_pdf_appears_only_after_the_delay(
    portal: FakePortal, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    template = portal.seed_template()
    _, body = await call(
        http, portal, "add", {"templateId": template, "entityTypeId": 2, "entityId": 1}
    )
    pdf_keys = {"pdfUrl", "pdfUrlMachine", "imageUrl", "imageUrlMachine"}
    assert not pdf_keys & set(body["result"]["document"])
    clock.advance(7.9)
    _, body = await call(http, portal, "get", {"id": 1})
    assert not pdf_keys & set(body["result"]["document"])
    assert body["result"]["document"]["isTransformationError"] is False
    with pytest.raises(LookupError):
        portal.document_file(1, "pdf")
    clock.advance(0.1)
    _, body = await call(http, portal, "get", {"id": 1})
    assert pdf_keys <= set(body["result"]["document"])
    _, body = await call(http, portal, "list")
    first_ids = (body["result"]["documents"][0]["pdfId"], body["result"]["documents"][0]["imageId"])
    first_pdf = portal.document_file(1, "pdf")
    _, body = await call(http, portal, "update", {"id": 1, "values": {"Comment": "again"}})
    # The conversion starts over, but until it is done the previous render is shown
    # (protocol.md §11): the same links, bytes and ids.
    assert {"pdfUrl", "imageUrl"} <= set(body["result"]["document"])
    _, body = await call(http, portal, "get", {"id": 1})
    assert pdf_keys <= set(body["result"]["document"])
    _, body = await call(http, portal, "list")
    row = body["result"]["documents"][0]
    assert (row["pdfId"], row["imageId"]) == first_ids
    assert pdf_keys <= set(row)
    assert portal.document_file(1, "pdf") == first_pdf
    clock.advance(8.0)
    _, body = await call(http, portal, "list")
    row = body["result"]["documents"][0]
    assert pdf_keys <= set(row)
    assert None not in (row["pdfId"], row["imageId"])
    assert row["pdfId"] != first_ids[0] and row["imageId"] != first_ids[1]


async def test_pdf_content_of_an_upload_is_converted_like_any_document(
    portal: FakePortal, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    # The docs' upload example sends pdfContent and answers without pdfUrl
    # (docs/portal.md#wire-quirks).
    pdf = b"%PDF-1.4 uploaded"
    fields = {
        "entityTypeId": 2, "entityId": 1, "fileContent": b64(build_docx("x")), "region": "de",
        "title": "Scan", "number": "S-1", "pdfContent": b64(pdf),
    }  # fmt: skip
    _, body = await call(http, portal, "upload", {"fields": fields})
    assert not {"pdfUrl", "imageUrl"} & set(body["result"]["document"])
    clock.advance(8.0)
    _, body = await call(http, portal, "get", {"id": 1})
    status, data, headers = await fetch(http, body["result"]["document"]["pdfUrlMachine"])
    assert (status, headers["Content-Type"]) == (200, "application/pdf")
    assert data.startswith(b"%PDF-")
    assert portal.document_file(1, "image").startswith(b"\x89PNG\r\n\x1a\n")


async def test_failures_and_jitter_are_seeded(http: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    async with FakePortal(
        rate_limit=None, clock=clock, pdf_delay=8.0, pdf_jitter=2.0, pdf_failure_rate=0.5, seed=7
    ) as portal:
        template = portal.seed_template()
        for entity in range(1, 21):
            portal.seed_document(template, 2, entity)

        async def states() -> list[str]:
            _, body = await call(
                http, portal, "batch", {"cmd": [f"{DOCS}get?id={i}" for i in range(1, 21)]}
            )
            docs = [r["document"] for r in body["result"]["result"]]
            return [
                "failed" if d["isTransformationError"] else "ready" if "pdfUrl" in d else "pending"
                for d in docs
            ]

        clock.advance(5.9)
        assert set(await states()) == {"pending"}
        clock.advance(2.1)
        middle = await states()
        assert "pending" in middle and set(middle) != {"pending"}
        clock.advance(2.0)
        final = await states()
        assert 0 < final.count("failed") < 20 and "pending" not in final
        failed = final.index("failed") + 1
        _, body = await call(http, portal, "get", {"id": failed})
        document = body["result"]["document"]
        assert isinstance(document["transformationErrorCode"], str)
        assert isinstance(document["transformationErrorMessage"], str)
        assert "pdfUrlMachine" not in document
        with pytest.raises(LookupError):
            portal.document_file(failed, "pdf")
    async with FakePortal(
        rate_limit=None, clock=clock, pdf_jitter=2.0, pdf_failure_rate=0.5, seed=7
    ) as again:
        template = again.seed_template()
        for entity in range(1, 21):
            again.seed_document(template, 2, entity)
        assert [d.failed for d in again.state.documents.values()] == [
            d.failed for d in portal.state.documents.values()
        ]


# -- machine URLs ----------------------------------------------------------------------------


async def test_machine_urls_serve_the_files(
    portal: FakePortal, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    template = portal.seed_template("Invoice", placeholders=("DocumentNumber", "Comment"))
    document = portal.seed_document(template, values={"Comment": "hello"})
    clock.advance(8.0)
    _, body = await call(http, portal, "get", {"id": document})
    doc = body["result"]["document"]
    assert doc["pdfUrl"] == (
        f"{portal.base_url}/bitrix/services/main/ajax.php"
        f"?action=crm.documentgenerator.document.getPdf&SITE_ID=s1&id={document}"
    )
    expected = {
        "downloadUrlMachine": ("docx", "crm.documentgenerator.document.download", "docx"),
        "pdfUrlMachine": ("pdf", "crm.documentgenerator.document.getPdf", "pdf"),
        "imageUrlMachine": ("image", "crm.documentgenerator.document.getImage", "png"),
    }
    portal.stats.reset()
    for key, (kind, action, suffix) in expected.items():
        url = doc[key]
        assert url.startswith(f"{portal.webhook_url}{action}.json?token=")
        status, data, headers = await fetch(http, url)
        assert status == 200
        assert data == portal.document_file(document, kind)
        assert f'filename="Invoice 1.{suffix}"' in headers["Content-Disposition"]
    assert portal.stats.requests == 3  # downloads are REST requests like any other
    assert document_xml(portal.document_file(document)).count("hello") == 1
    pdf = portal.document_file(document, "pdf")
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert f"(Document {document}) Tj".encode() in pdf
    assert portal.document_file(document, "image").startswith(b"\x89PNG\r\n\x1a\n")

    template_url = portal.templates[template]["downloadMachine"]
    status, data, headers = await fetch(http, template_url)
    assert (status, data) == (200, portal.template_file(template))
    assert headers["Content-Type"].startswith("application/vnd.openxmlformats")


async def test_machine_urls_refuse_bad_tokens_and_gone_files(
    portal: FakePortal, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    template = portal.seed_template()
    first, second = portal.seed_document(template), portal.seed_document(template)
    clock.advance(8.0)
    _, body = await call(http, portal, "get", {"id": first})
    url = body["result"]["document"]["pdfUrlMachine"]
    token = url.split("token=")[1]
    payload, signature = token.split(".")
    other = (
        base64.urlsafe_b64encode(
            base64.urlsafe_b64decode(payload + "==").replace(b"id=1&", b"id=2&")
        )
        .decode()
        .rstrip("=")
    )
    for bad in (
        url.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB")),
        url.replace(token, f"{other}.{signature}"),
        url.split("?")[0],
        url.replace("getPdf", "getImage"),
    ):
        status, data, _ = await fetch(http, bad)
        assert status == 403
        assert json.loads(data)["error"] == "ACCESS_DENIED"
    wrong_code = url.replace(portal.webhook_code, "0" * len(portal.webhook_code))
    assert (await fetch(http, wrong_code))[0] == 401

    creds = portal.oauth
    _, body = await call(http, portal, "get", {"id": second})
    async with http.post(
        creds.client_endpoint + DOCS + "get", json={"id": second, "auth": creds.access_token}
    ) as response:
        oauth_doc = (await response.json())["result"]["document"]
    oauth_url = oauth_doc["downloadUrlMachine"]
    assert oauth_url.startswith(
        f"{creds.client_endpoint}crm.documentgenerator.document.download.json"
        f"?auth={creds.access_token}&token="
    )
    assert (await fetch(http, oauth_url))[1] == portal.document_file(second)
    webhook_token = body["result"]["document"]["downloadUrlMachine"].split("token=")[1]
    foreign = oauth_url.split("token=")[0] + "token=" + webhook_token
    assert (await fetch(http, foreign))[0] == 403  # a link works only for its own caller

    before = portal.document_file(first, "pdf")
    portal.conversion.failure_rate = 1.0  # the update's conversion fails
    await call(http, portal, "update", {"id": first})
    status, data, _ = await fetch(http, url)
    assert (status, data) == (200, before)  # the previous render, until the new one is done
    clock.advance(8.0)
    status, data, _ = await fetch(http, url)
    assert (status, json.loads(data)["error_description"]) == (404, "File not found")
    await call(http, portal, "delete", {"id": first})
    status, data, _ = await fetch(http, url)
    assert (status, json.loads(data)["error_description"]) == (404, "Document not found")


async def test_file_endpoints_are_not_batchable(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    document = portal.seed_document(portal.seed_template())
    url = portal.documents[document]["downloadUrlMachine"]
    command = "crm.documentgenerator.document.download?" + url.split("?")[1]
    cmd = {"d": command, "t": "crm.documentgenerator.template.download", "g": f"{DOCS}get?id=1"}
    status, body = await call(http, portal, "batch", {"cmd": cmd})
    assert status == 200
    errors = body["result"]["result_error"]
    assert set(errors) == {"d", "t"}
    assert {e["error"] for e in errors.values()} == {"ERROR_BATCH_METHOD_NOT_ALLOWED"}
    assert list(body["result"]["result"]) == ["g"]
