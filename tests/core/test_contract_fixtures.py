"""Contract tests: every success example of the project's corpus structures into its model.

Each example (``tests/fixtures/``, see its README) runs through both converters: the lenient one
used in production and the strict one, which rejects keys the models do not know, so a field the
portal sends but a model lacks fails here. The values are asserted field by field, so a wire
quirk read wrongly (a string id, ``"N"``, ``[]`` for an empty object) fails too. A guard test
makes sure a new example cannot be added without an entry below. The same checks run on the
official docs' examples in ``tests/crosscheck/`` when those are present.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bitrix_docgen_async.auth import OAuthAuth, OAuthTokens
from bitrix_docgen_async.core.convert import structure, structure_fields, structure_templates
from bitrix_docgen_async.errors import ResponseError
from bitrix_docgen_async.models import (
    Document,
    DocumentEventType,
    EventBinding,
    FieldDescription,
    Numerator,
    ProductsSummary,
    SequentSettings,
    Template,
)
from bitrix_docgen_async.receiver import parse_offline_row
from bitrix_docgen_async.transport import HttpResponse
from tests.corpus import corpus_files, docgen, load, manifest, raw, status

CEST = timedelta(hours=2)
HOST = "https://tundra.bitrix24.eu"
HANDLER = "https://hooks.tundra-print.example/bitrix/docgen"

Check = Callable[[Any, bool], None]
CHECKS: dict[str, Check] = {}
# Success examples that hold no model, with the reason (or the test that reads them).
NOT_MODELS: dict[str, str] = {
    docgen("document.delete.response"): "result null",
    docgen("numerator.delete.response"): "result null",
    docgen("template.delete.response"): "result null",
    "oauth/token.authorization_code.json": "test_oauth_token_answers",
    "oauth/token.refresh_token.json": "test_oauth_token_answers",
}


def check(*names: str) -> Callable[[Check], Check]:
    """Register a check for corpus files, named relative to ``tests/fixtures``."""

    def register(func: Check) -> Check:
        for name in names:
            CHECKS[name] = func
        return func

    return register


def result(payload: Any) -> Any:
    return payload["result"]


def at(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.utcoffset() == CEST
    return value


def aware(value: datetime | None) -> datetime:
    assert value is not None
    assert value.utcoffset() == CEST
    return value


# --- documents -------------------------------------------------------------------------------


def assert_document_214(doc: Document) -> None:
    assert (doc.id, doc.template_id, doc.entity_type_id, doc.entity_id) == (214, 17, 2, 4502)
    assert doc.title == "Invoice (EU) INV-0007"
    assert doc.is_transformation_error is False
    assert not doc.pdf_failed
    assert (doc.change_stamps_enabled, doc.qr_code_enabled, doc.change_qr_code_enabled) == (
        False,
        False,
        False,
    )
    assert doc.change_stamps_disabled_reason == "The template has no stamp or signature fields"
    assert doc.change_qr_code_disabled_reason == "The template has no QR code field"
    assert doc.pull_tag == "TRANSFORMDOCUMENT214"
    assert doc.public_url is None
    assert doc.products == ProductsSummary("EUR", Decimal("1250.00"), 3)
    assert doc.values["_creationMethod"] == "rest"
    assert doc.values["productsTableVariant"] == ""
    assert doc.download_url == (
        f"{HOST}/bitrix/services/main/ajax.php"
        "?action=crm.documentgenerator.document.download&SITE_ID=s1&id=214"
    )
    assert doc.download_url_machine is not None
    assert doc.download_url_machine.startswith(f"{HOST}/rest/crm.documentgenerator.document.")
    assert aware(doc.created_time) == at("2026-05-12T10:14:03+02:00")


@check(docgen("document.add.response"))
def document_add(payload: Any, strict: bool) -> None:
    doc = structure(result(payload)["document"], Document, strict=strict)
    assert_document_214(doc)
    assert doc.number == "INV-0007"
    assert (doc.created_by, doc.updated_by) == (42, None)  # ints here, strings in get
    assert doc.stamps_enabled is False
    assert doc.email_disk_file == 9120
    assert doc.values == {
        "productsTableVariant": "",
        "_creationMethod": "rest",
        "stampsEnabled": False,
        "DocumentNumber": "INV-0007",
        "Comment": "Deliver by 30 May",
    }
    assert doc.pdf_url_machine is None
    assert doc.pdf_ready  # the browser pdfUrl is already set in this answer
    assert aware(doc.updated_time) == aware(doc.created_time)


@check(docgen("document.get.response"))
def document_get(payload: Any, strict: bool) -> None:
    doc = structure(result(payload)["document"], Document, strict=strict)
    assert_document_214(doc)
    assert doc.number == "INV-0007"
    assert (doc.created_by, doc.updated_by) == (42, None)
    assert doc.email_disk_file == 9124
    # get reads back the service keys only, not the DocumentNumber that add was given
    assert doc.values == {
        "productsTableVariant": "",
        "_creationMethod": "rest",
        "stampsEnabled": False,
    }
    for url in (doc.pdf_url_machine, doc.image_url_machine, doc.download_url_machine):
        assert url is not None
        assert url.endswith("?auth=REDACTED&token=REDACTED")
    assert doc.pdf_ready


@check(docgen("document.update.response"))
def document_update(payload: Any, strict: bool) -> None:
    doc = structure(result(payload)["document"], Document, strict=strict)
    assert_document_214(doc)
    assert doc.number == "INV-0007/A"
    assert (doc.created_by, doc.updated_by) == (None, 42)  # updatedBy an int, createdBy null
    assert doc.stamps_enabled is True
    assert doc.values["DocumentNumber"] == "INV-0007/A"
    assert doc.values["stampsEnabled"] is True
    assert aware(doc.updated_time) == at("2026-05-12T10:44:03+02:00")
    assert doc.pdf_url_machine is None
    assert doc.email_disk_file == 9131


@check(docgen("document.upload.response"))
def document_upload(payload: Any, strict: bool) -> None:
    doc = structure(result(payload)["document"], Document, strict=strict)
    assert (doc.id, doc.template_id, doc.entity_type_id, doc.entity_id) == (215, 23, 2, 4502)
    assert (doc.title, doc.number) == ("Signed contract 4502", "C-4502")
    assert doc.created_by == 42
    assert doc.stamps_enabled is False
    assert (doc.pdf_url, doc.pdf_url_machine, doc.image_url) == (None, None, None)
    assert not doc.pdf_ready  # converted like any document: no PDF yet
    assert not doc.pdf_failed
    assert doc.values == {"productsTableVariant": "", "_creationMethod": "rest"}
    assert doc.products == ProductsSummary("EUR", Decimal("0.00"), 0)
    assert doc.email_disk_file == 9140


@check(docgen("document.list.response"))
def document_list(payload: Any, strict: bool) -> None:
    docs = structure(result(payload)["documents"], list[Document], strict=strict)
    assert [d.id for d in docs] == [214, 209]
    first, second = docs
    assert (first.file_id, first.image_id, first.pdf_id) == (730, 732, 734)
    assert (second.file_id, second.image_id, second.pdf_id) == (712, 714, 716)
    assert (first.number, second.number) == ("INV-0007/A", "INV-0006")
    assert (first.created_by, first.updated_by, second.updated_by) == (42, 42, None)
    assert all(d.pdf_ready and d.entity_id == 4502 and d.template_id == 17 for d in docs)
    assert all(d.values == {"_creationMethod": "rest", "stampsEnabled": False} for d in docs)
    assert aware(first.updated_time) == at("2026-05-12T10:44:03+02:00")
    assert aware(second.created_time) == at("2026-05-11T09:14:03+02:00")
    # list rows leave out what get shows
    assert (first.products, first.pull_tag, first.email_disk_file) == (None, None, None)
    assert payload["total"] == 2


@check(docgen("document.enablepublicurl.response"))
def document_public_url(payload: Any, strict: bool) -> None:
    assert structure(result(payload)["publicUrl"], str, strict=strict) == f"{HOST}/~Xq7Lm"


def assert_fields(fields: dict[str, FieldDescription], number: str) -> None:
    assert list(fields) == ["DocumentNumber", "Comment", "MyCompanyUfStamp", "BANK"]
    doc_number, comment, stamp, bank = fields.values()
    assert doc_number.code == "DocumentNumber"
    assert (doc_number.title, doc_number.value, doc_number.default) == ("Number", number, number)
    assert doc_number.required is True  # "Y"
    assert doc_number.group == ("Document",)
    assert doc_number.chain == "this.DOCUMENT.DOCUMENT_NUMBER"
    assert (comment.required, comment.value, comment.default) == (False, "Deliver by 30 May", None)
    assert comment.chain is None
    assert (stamp.type, stamp.value, stamp.required) == ("STAMP", None, False)
    assert stamp.group == ("Document", "My Company")
    assert bank.code == "BANK"
    assert [(o["value"], o["selected"]) for o in bank.value] == [("12", True), ("19", False)]
    assert bank.type is None


@check(docgen("document.getfields.response"))
def document_getfields(payload: Any, strict: bool) -> None:
    assert_fields(structure_fields(result(payload)["documentFields"], strict=strict), "INV-0007")


@check(docgen("template.getfields.response"))
def template_getfields(payload: Any, strict: bool) -> None:
    # values.DocumentNumber was sent: both value and default show it
    assert_fields(structure_fields(result(payload)["templateFields"], strict=strict), "INV-0099")


# --- templates -------------------------------------------------------------------------------


def assert_template_17(tpl: Template) -> None:
    assert (tpl.id, tpl.numerator_id, tpl.region, tpl.code) == (17, 8, "pl", None)
    assert (tpl.active, tpl.with_stamps, tpl.is_deleted) == (True, False, False)  # Y/N/N
    assert (tpl.module_id, tpl.sort) == ("crm", 500)
    assert tpl.entity_type_ids == ("2", "31")
    assert tpl.download_url == (
        f"{HOST}/bitrix/services/main/ajax.php"
        "?action=crm.documentgenerator.template.download&SITE_ID=s1&id=17"
    )
    assert tpl.download_machine is not None
    assert aware(tpl.created_time) == at("2026-05-12T09:14:03+02:00")


@check(docgen("template.add.response"))
def template_add(payload: Any, strict: bool) -> None:
    tpl = structure(result(payload)["template"], Template, strict=strict)
    assert_template_17(tpl)
    assert tpl.name == "Invoice (EU)"
    assert tpl.users == ("U42",)  # users not sent: the caller
    assert tpl.updated_time == tpl.created_time


@check(docgen("template.get.response"), docgen("template.update.response"))
def template_updated(payload: Any, strict: bool) -> None:
    tpl = structure(result(payload)["template"], Template, strict=strict)
    assert_template_17(tpl)
    assert tpl.name == "Invoice (EU, 2026)"
    assert tpl.users == ("U42", "G7")  # an object on the wire
    assert aware(tpl.updated_time) == at("2026-05-12T09:44:03+02:00")


@check(docgen("template.list.response"))
def template_list(payload: Any, strict: bool) -> None:
    templates = structure_templates(result(payload)["templates"], strict=strict)
    assert [t.id for t in templates] == [17, 12]  # the portal's order, not sorted
    first, second = templates
    assert (first.users, second.users) == (("U42", "G7"), ("UA",))  # a list here
    assert second.entity_type_ids == ("2_category_4", "31_2")
    assert (second.name, second.region) == ("Delivery note", "pl")
    assert first.active is None  # list rows leave the flags out
    assert first.download_machine is not None
    assert payload["total"] == 2


@check(docgen("template.list.empty.response"))
def template_list_empty(payload: Any, strict: bool) -> None:
    assert result(payload)["templates"] == []  # PHP's empty array, not {}
    assert structure_templates(result(payload)["templates"], strict=strict) == []
    assert payload["total"] == 0


# --- numerators ------------------------------------------------------------------------------


@check(docgen("numerator.add.response"))
def numerator_add(payload: Any, strict: bool) -> None:
    num = structure(result(payload)["numerator"], Numerator, strict=strict)
    assert (num.id, num.name, num.template, num.code) == (8, "Invoices 2026", "INV-{NUMBER}", None)
    assert num.sequent == SequentSettings(
        start=1, step=1, length=4, pad_string="0", is_direct_numeration=False
    )


@check(docgen("numerator.get.response"), docgen("numerator.update.response"))
def numerator_updated(payload: Any, strict: bool) -> None:
    wire = result(payload)
    wire = wire.get("numerator", wire)  # update answers it unwrapped (test below)
    num = structure(wire, Numerator, strict=strict)
    assert (num.id, num.name, num.template) == (8, "Invoices 2026 (EU)", "EU-{NUMBER}")
    assert num.sequent == SequentSettings(
        start=500, step=1, length=4, pad_string="0", is_direct_numeration=False
    )
    assert set(num.settings) == {"Bitrix_Main_Numerator_Generator_SequentNumberGenerator"}


@check(docgen("numerator.list.response"))
def numerator_list(payload: Any, strict: bool) -> None:
    nums = structure(result(payload)["numerators"], list[Numerator], strict=strict)
    assert [n.id for n in nums] == [3, 8]
    assert nums[0].sequent == SequentSettings(
        start=1, step=1, periodic_by="year", timezone="Europe/Warsaw", is_direct_numeration=True
    )
    assert nums[1].sequent is not None
    assert (nums[1].sequent.start, nums[1].sequent.length) == (500, 4)
    assert payload["total"] == 2


# --- events ----------------------------------------------------------------------------------


@check(
    "events/ONCRMDOCUMENTGENERATORDOCUMENTADD.form",
    "events/ONCRMDOCUMENTGENERATORDOCUMENTUPDATE.form",
    "events/ONCRMDOCUMENTGENERATORDOCUMENTDELETE.form",
)
def document_event(payload: Any, strict: bool) -> None:
    kind = structure(payload["event"], DocumentEventType, strict=strict)
    assert kind.name.lower() in {"add", "update", "delete"}
    fields = payload["data"]["FIELDS"]
    assert all(isinstance(value, str) for value in fields.values())  # a form: strings only
    ids = [structure(fields[k], int) for k in ("ID", "ENTITY_TYPE_ID", "ENTITY_ID")]
    assert ids == [214, 2, 4502]
    assert payload["auth"]["application_token"] == "c0ffee5e1f2a3b4c5d6e7f8091a2b3c4"
    assert ("access_token" in payload["auth"]) is (kind is not DocumentEventType.DELETE)


@check("events/event.get.response.json")
def event_get(payload: Any, strict: bool) -> None:
    bindings = structure(result(payload), list[EventBinding], strict=strict)
    assert [(b.event, b.auth_type, b.offline) for b in bindings] == [
        ("ONCRMDOCUMENTGENERATORDOCUMENTADD", 0, False),
        ("ONCRMDOCUMENTGENERATORDOCUMENTDELETE", 42, False),
        ("ONCRMDOCUMENTGENERATORDOCUMENTUPDATE", 0, True),
    ]
    assert [b.handler for b in bindings] == [HANDLER, HANDLER, ""]


@check("events/event.bind.response.json")
def event_bind(payload: Any, strict: bool) -> None:
    assert structure(result(payload), bool, strict=strict) is True


@check("events/event.unbind.response.json")
def event_unbind(payload: Any, strict: bool) -> None:
    assert structure(result(payload)["count"], int, strict=strict) == 2


@check("events/event.offline.get.response.json")
def event_offline_get(payload: Any, strict: bool) -> None:
    answer = result(payload)
    assert answer["process_id"] == "q7c2m0x9f4k1t8w3r6b5n2d0s1h4j7p9"
    events = [parse_offline_row(row, domain="tundra", member_id="m") for row in answer["events"]]
    assert [(e.event_type, e.document_id, e.entity_id, e.queue_id) for e in events] == [
        (DocumentEventType.ADD, 2417, 880, 318),
        (DocumentEventType.UPDATE, 2390, 871, 321),
    ]
    assert events[0].message_id == "7d1f0c2e9a4b8356e1d07c3f92ab4e60"
    assert events[0].timestamp.utcoffset() is not None


@check("events/event.offline.list.response.json")
def event_offline_list(payload: Any, strict: bool) -> None:
    rows = result(payload)
    events = [parse_offline_row(row, domain="tundra", member_id="m") for row in rows]
    assert [e.event_type for e in events] == [DocumentEventType.UPDATE, DocumentEventType.DELETE]
    assert [row["PROCESS_ID"] != "" for row in rows] == [True, False]
    assert payload["total"] == 2


@check("events/event.offline.clear.response.json", "events/event.offline.error.response.json")
def event_offline_confirmations(payload: Any, strict: bool) -> None:
    assert structure(result(payload), bool, strict=strict) is True


@check("events/feature.get.response.json")
def feature_get(payload: Any, strict: bool) -> None:
    assert result(payload) == {"value": "Y"}


# --- the table and its guard -----------------------------------------------------------------


def success_examples() -> list[str]:
    """Every corpus file these tests are responsible for: answers that are not errors.

    ``batch/`` and ``limits/`` belong to ``test_envelope.py``, errors to ``test_errormap.py``.
    """
    names = []
    for name in corpus_files():
        if name.startswith(("batch/", "limits/", "events/other/")):
            continue
        payload = load(name)
        if isinstance(payload, dict) and "error" in payload:
            continue
        names.append(name)
    return names


def test_corpus_is_found() -> None:
    names = success_examples()
    # 20 docgen, 3 event.*, 4 event.offline.*, feature.get, 3 deliveries, 2 tokens
    assert len(names) == 33, names
    assert set(names) <= set(manifest())


def unchecked(names: list[str]) -> list[str]:
    return [n for n in names if n not in CHECKS and n not in NOT_MODELS]


def test_every_example_has_an_entry() -> None:
    missing = unchecked(success_examples())
    assert not missing, f"examples without a contract check: {missing}"
    new = docgen("document.new.response")
    assert unchecked([*success_examples(), new]) == [new]  # the guard notices a new file
    stale = [n for n in [*CHECKS, *NOT_MODELS] if n not in success_examples()]
    assert not stale, f"entries for missing examples: {stale}"


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_structures(name: str, strict: bool) -> None:
    assert status(name) in (200, None)
    CHECKS[name](load(name), strict)


def test_strict_converter_refuses_an_unknown_key() -> None:
    wire = load(docgen("document.get.response"))["result"]["document"]
    structure(wire, Document, strict=True)
    with pytest.raises(ResponseError) as caught:
        structure(wire | {"brandNewField": 1}, Document, strict=True)
    assert "brandNewField" in " ".join(caught.value.detail)
    assert structure(wire | {"brandNewField": 1}, Document).id == 214  # production tolerates it


@pytest.mark.parametrize("name", sorted(n for n in NOT_MODELS if "delete" in n))
def test_delete_returns_null(name: str) -> None:
    assert load(name)["result"] is None
    assert status(name) == 200


def test_numerator_update_is_not_wrapped() -> None:
    assert "numerator" not in load(docgen("numerator.update.response"))["result"]
    assert "numerator" in load(docgen("numerator.get.response"))["result"]


# --- the OAuth server's answers --------------------------------------------------------------


class _TokenServer:
    """Answers the token request with one corpus file, as a transport would."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.asked: list[dict[str, str]] = []

    async def get(self, url: str, params: dict[str, str] | None = None) -> HttpResponse:
        self.asked.append(dict(params or {}))
        code = status(self.name)
        assert code is not None
        return HttpResponse(status=code, headers={}, body=raw(self.name), url=url)


def _auth(stored: list[OAuthTokens]) -> OAuthAuth:
    async def store(tokens: OAuthTokens) -> None:
        stored.append(tokens)

    return OAuthAuth(
        client_endpoint=f"{HOST}/rest/",
        access_token="old-access",
        refresh_token="old-refresh",
        client_id="app.5b0e8c1d",
        client_secret="s3cr3t",
        token_store=store,
    )


@pytest.mark.parametrize(
    ("name", "access", "refresh"),
    [
        (
            "oauth/token.authorization_code.json",
            "q8w2c4k7z1m5r9t3y6u0p2s8d4f7g1h5",
            "n3b6v9c2x5z8l1k4j7h0g3f6d9s2a5q8",
        ),
        (
            "oauth/token.refresh_token.json",
            "e5r8t1y4u7i0o3p6a9s2d5f8g1h4j7k0",
            "m2n5b8v1c4x7z0l3k6j9h2g5f8d1s4a7",
        ),
    ],
)
async def test_oauth_token_answers(name: str, access: str, refresh: str) -> None:
    stored: list[OAuthTokens] = []
    auth = _auth(stored)
    server = _TokenServer(name)
    await auth.refresh(server, None)  # type: ignore[arg-type]
    assert server.asked[0]["grant_type"] == "refresh_token"
    (tokens,) = stored
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_in) == (access, refresh, 3600)
    assert tokens.client_endpoint == f"{HOST}/rest/"
    assert (tokens.domain, tokens.member_id) == (
        "oauth.bitrix.info",
        "5b0e8c1d27f4a9368e1c0b7d2a94f615",
    )
    assert auth.token == access
