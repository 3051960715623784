"""Cross-check: every success example of the official docs structures into its model.

The same contract as ``tests/core/test_contract_fixtures.py``, run on the docs' own examples
(``../shared/fixtures/docs/``, beside the repository in the project's workspace). Skipped, with
the reason printed, where that folder is absent (a plain clone). Each example runs through both
converters: the lenient one used in production and the strict one, which rejects keys the models
do not know, so a field the docs show but a model lacks fails here. A guard test makes sure a new
fixture file cannot be added without an entry below.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bitrix_docgen_async.core.convert import structure, structure_fields, structure_templates
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
from tests.corpus import SHARED, SHARED_MISSING

if SHARED_MISSING:
    pytest.skip(SHARED_MISSING, allow_module_level=True)

FIXTURES = SHARED
DOCGEN = FIXTURES / "docs" / "crm.documentgenerator"
EVENTS = FIXTURES / "docs" / "events"
PYSDK_ASSERTIONS = (
    FIXTURES / "sdks" / "b24pysdk" / "crm.documentgenerator.document.live-test-assertions.json"
)
DG = "crm.documentgenerator/crm.documentgenerator."
EVENT = "crm.documentgenerator/onCrmDocumentGeneratorDocument"
TUTORIAL = "crm.documentgenerator/tutorial-how-to-generate-documents/"
MSK = timedelta(hours=3)

Check = Callable[[Any, bool], None]
CHECKS: dict[str, Check] = {}
# Success examples that hold no model, with the reason.
NOT_MODELS: dict[str, str] = {
    DG + "document.delete.response.json": "result null",
    DG + "numerator.delete.response.json": "result null",
    DG + "template.delete.response.json": "result null",
    "events/event.offline.get.response.json": "offline events are not used by the client",
}


def check(*names: str) -> Callable[[Check], Check]:
    """Register a check for fixture files, named relative to ``fixtures/docs``."""

    def register(func: Check) -> Check:
        for name in names:
            CHECKS[name] = func
        return func

    return register


def load(name: str) -> Any:
    return json.loads((FIXTURES / "docs" / name).read_text(encoding="utf-8"))


def result(payload: Any) -> Any:
    return payload["result"]


def aware(value: datetime | None, offset: timedelta = MSK) -> datetime:
    assert value is not None
    assert value.utcoffset() == offset
    return value


# --- documents -------------------------------------------------------------------------------


def assert_document_61(doc: Document) -> None:
    assert (doc.id, doc.template_id, doc.entity_type_id, doc.entity_id) == (61, 39, 2, 101)
    assert (doc.stamps_enabled, doc.is_transformation_error) == (True, False)
    assert not (doc.change_stamps_enabled or doc.qr_code_enabled or doc.change_qr_code_enabled)
    assert doc.qr_code_enabled is False
    assert doc.pull_tag == "TRANSFORMDOCUMENT61"
    assert doc.public_url is None
    assert doc.products == ProductsSummary("UAH", Decimal("0.00"), 0)
    assert doc.values["_creationMethod"] == "rest"
    assert doc.values["stampsEnabled"] is True
    assert doc.download_url_machine is not None


@check(DG + "document.add.response.json")
def document_add(payload: Any, strict: bool) -> None:
    doc = structure(result(payload)["document"], Document, strict=strict)
    assert_document_61(doc)
    assert doc.title == "Demo fulfillment of product 2026-001"
    assert doc.number == "2026-001"
    assert doc.created_by == 577
    assert doc.updated_by is None
    assert aware(doc.created_time) == datetime.fromisoformat("2026-03-20T13:51:45+03:00")
    assert doc.email_disk_file == 5605
    assert doc.values["DocumentNumber"] == "2026-001"
    assert doc.change_stamps_disabled_reason == "The template is missing seals and signatures"
    assert doc.change_qr_code_disabled_reason == "The template is missing a QR code"
    assert doc.pdf_url_machine is None
    assert doc.pdf_ready  # the browser pdfUrl is already set in this example
    assert not doc.pdf_failed


@check(DG + "document.get.response.json")
def document_get(payload: Any, strict: bool) -> None:
    doc = structure(result(payload)["document"], Document, strict=strict)
    assert_document_61(doc)
    assert doc.created_by == 577
    assert doc.email_disk_file == 5609
    assert aware(doc.updated_time) == datetime.fromisoformat("2026-03-20T13:51:45+03:00")
    assert doc.pdf_url_machine is not None
    assert doc.pdf_url_machine.startswith("https://bitrix.bitrix24.com/rest/")
    assert doc.image_url_machine is not None
    assert doc.pdf_ready


@check(DG + "document.update.response.json")
def document_update(payload: Any, strict: bool) -> None:
    doc = structure(result(payload)["document"], Document, strict=strict)
    assert_document_61(doc)
    assert doc.number == "2026-002"
    assert doc.created_by is None
    assert doc.updated_by == 577
    assert aware(doc.created_time) > aware(doc.updated_time)  # as printed in the docs
    assert doc.email_disk_file == 5611


@check(DG + "document.upload.response.json")
def document_upload(payload: Any, strict: bool) -> None:
    doc = structure(result(payload)["document"], Document, strict=strict)
    assert (doc.id, doc.template_id, doc.entity_type_id, doc.entity_id) == (63, 55, 2, 101)
    assert doc.stamps_enabled is False
    assert doc.pdf_url is None
    assert doc.pdf_url_machine is None
    assert doc.image_url is None
    assert not doc.pdf_ready
    assert not doc.pdf_failed
    assert doc.values == {"productsTableVariant": "", "_creationMethod": "rest"}
    assert doc.email_disk_file == 5619


@check(DG + "document.list.response.json")
def document_list(payload: Any, strict: bool) -> None:
    docs = structure(result(payload)["documents"], list[Document], strict=strict)
    assert [d.id for d in docs] == [61, 59]
    first, second = docs
    assert (first.file_id, first.image_id, first.pdf_id) == (283, 285, 287)
    assert (second.file_id, second.image_id, second.pdf_id) == (271, 273, 275)
    assert first.updated_by == 577
    assert second.updated_by is None
    assert all(d.pdf_ready and d.entity_id == 101 and d.template_id == 39 for d in docs)
    assert aware(first.updated_time) == datetime.fromisoformat("2026-03-20T14:42:38+03:00")
    assert first.products is None
    assert first.pull_tag is None


@check(TUTORIAL + "step3-document-add.response-shortened.json")
def tutorial_document_add(payload: Any, strict: bool) -> None:
    doc = structure(result(payload)["document"], Document, strict=strict)
    assert (doc.id, doc.template_id, doc.entity_type_id, doc.entity_id) == (1919, 249, 2, 8287)
    assert doc.created_by == 1
    assert doc.number == "1"
    assert doc.updated_time is None
    assert doc.values == {}
    assert doc.products is not None
    assert doc.products.currency_id == "EUR"
    assert not doc.pdf_ready


@check(DG + "document.enablepublicurl.response.json")
def document_public_url(payload: Any, strict: bool) -> None:
    assert structure(result(payload)["publicUrl"], str, strict=strict) == (
        "https://bitrix.bitrix24.com/~71q5j"
    )


def assert_fields(fields: dict[str, FieldDescription]) -> None:
    assert list(fields) == ["DocumentNumber", "MyCompanyUfLogo", "MY_COMPANY"]
    number, logo, company = fields.values()
    assert number.code == "DocumentNumber"
    assert number.required is True
    assert number.group == ("Document",)
    assert number.chain == "this.DOCUMENT.DOCUMENT_NUMBER"
    assert number.default == "2026-001"
    assert (logo.type, logo.value, logo.required) == ("IMAGE", None, False)
    assert logo.group == ("Document", "My Company")
    assert company.code == "MY_COMPANY"
    assert [option["value"] for option in company.value] == ["340", "358"]
    assert company.chain is None


@check(DG + "document.getfields.response.json")
def document_getfields(payload: Any, strict: bool) -> None:
    assert_fields(structure_fields(result(payload)["documentFields"], strict=strict))


@check(DG + "template.getfields.response.json")
def template_getfields(payload: Any, strict: bool) -> None:
    assert_fields(structure_fields(result(payload)["templateFields"], strict=strict))


# --- templates -------------------------------------------------------------------------------


def assert_full_template(tpl: Template) -> None:
    assert tpl.region == "de"
    assert tpl.code is None
    assert (tpl.active, tpl.with_stamps, tpl.is_deleted) == (True, False, False)
    assert tpl.module_id == "crm"
    assert tpl.sort == 500
    assert tpl.users == ("UA",)
    assert tpl.entity_type_ids == ("2",)
    assert tpl.download_url is not None
    assert tpl.download_machine is not None
    aware(tpl.created_time)
    aware(tpl.updated_time)


@check(
    DG + "template.add.response.json",
    DG + "template.get.response.json",
    DG + "template.update.response.json",
)
def template_single(payload: Any, strict: bool) -> None:
    tpl = structure(result(payload)["template"], Template, strict=strict)
    assert_full_template(tpl)
    assert (tpl.id, tpl.numerator_id) == (41, 49)
    assert tpl.name.startswith("Template from file")


@check(TUTORIAL + "step2-template-add.response.json")
def tutorial_template_add(payload: Any, strict: bool) -> None:
    tpl = structure(result(payload)["template"], Template, strict=strict)
    assert_full_template(tpl)
    assert (tpl.id, tpl.numerator_id) == (249, 1095)
    assert tpl.created_time == datetime.fromisoformat("2026-08-19T14:55:23+03:00")


@check(DG + "template.list.response.json")
def template_list(payload: Any, strict: bool) -> None:
    templates = structure_templates(result(payload)["templates"], strict=strict)
    assert [t.id for t in templates] == [39, 37]  # the portal's order, not sorted
    assert all(t.users == ("UA",) for t in templates)  # a list here, an object elsewhere
    assert templates[0].entity_type_ids == ("2_category_0", "2_category_32")
    assert templates[1].entity_type_ids[0] == "2_category_37"
    assert templates[0].active is None
    assert templates[0].download_machine is not None


# --- numerators ------------------------------------------------------------------------------

FULL_SEQUENT = SequentSettings(
    start=1, step=1, length=0, pad_string="0", is_direct_numeration=False
)


@check(DG + "numerator.add.response.json")
def numerator_add(payload: Any, strict: bool) -> None:
    num = structure(result(payload)["numerator"], Numerator, strict=strict)
    assert (num.id, num.name, num.template, num.code) == (45, "REST Enumerator", "{NUMBER}", None)
    assert num.sequent == FULL_SEQUENT


@check(TUTORIAL + "step1-numerator-add.response.json")
def tutorial_numerator_add(payload: Any, strict: bool) -> None:
    num = structure(result(payload)["numerator"], Numerator, strict=strict)
    assert (num.id, num.name) == (1095, "Numerator from REST")
    assert num.sequent == FULL_SEQUENT


@check(
    DG + "numerator.get.response.json",
    DG + "numerator.update.response.json",
)
def numerator_updated(payload: Any, strict: bool) -> None:
    wire = result(payload)
    wire = wire.get("numerator", wire)  # update returns the numerator unwrapped
    num = structure(wire, Numerator, strict=strict)
    assert (num.id, num.template) == (45, "INV-{NUMBER}")
    assert num.sequent is not None
    assert num.sequent.start == 100
    assert "Bitrix_Main_Numerator_Generator_SequentNumberGenerator" in num.settings


@check(DG + "numerator.list.response.json")
def numerator_list(payload: Any, strict: bool) -> None:
    nums = structure(result(payload)["numerators"], list[Numerator], strict=strict)
    assert [n.id for n in nums] == [2, 45]
    assert nums[0].sequent == SequentSettings(start=1, step=1, is_direct_numeration=False)
    assert nums[1].sequent is not None
    assert nums[1].sequent.pad_string == "0"


# --- events ----------------------------------------------------------------------------------


@check(EVENT + "Add.event.json", EVENT + "Update.event.json", EVENT + "Delete.event.json")
def document_event(payload: Any, strict: bool) -> None:
    kind = structure(payload["event"], DocumentEventType, strict=strict)
    assert kind.name.lower() in {"add", "update", "delete"}
    fields = payload["data"]["FIELDS"]
    ids = [structure(fields[k], int) for k in ("ID", "ENTITY_TYPE_ID", "ENTITY_ID")]
    assert ids == [1869, 1, 1000993]


@check("events/event.get.response.json")
def event_get(payload: Any, strict: bool) -> None:
    bindings = structure(result(payload), list[EventBinding], strict=strict)
    assert [(b.event, b.auth_type, b.offline) for b in bindings] == [
        ("ONCRMLEADADD", 0, False),
        ("ONCRMLEADADD", 15, False),
    ]
    assert bindings[0].handler == "https://www.my-domain.com/handler/"


@check("events/event.bind.response.json")
def event_bind(payload: Any, strict: bool) -> None:
    assert structure(result(payload), bool, strict=strict) is True


@check("events/event.unbind.response.json")
def event_unbind(payload: Any, strict: bool) -> None:
    assert structure(result(payload)["count"], int, strict=strict) == 1


# --- the table and its guard -----------------------------------------------------------------


def fixture_names() -> list[str]:
    """Every success example these tests are responsible for, relative to ``fixtures/docs``."""
    docs = FIXTURES / "docs"
    files = [*DOCGEN.rglob("*.json*"), *EVENTS.glob("*.response.json*")]
    return sorted(p.relative_to(docs).as_posix() for p in files if ".error." not in p.name)


def test_fixtures_are_found() -> None:
    assert DOCGEN.is_dir(), f"no fixtures under {FIXTURES}"
    assert len(fixture_names()) >= 29


def unchecked(names: list[str]) -> list[str]:
    return [n for n in names if n not in CHECKS and n not in NOT_MODELS]


def test_every_fixture_has_an_entry() -> None:
    missing = unchecked(fixture_names())
    assert not missing, f"fixtures without a contract check: {missing}"
    new = DG + "document.new.response.json"
    assert unchecked([*fixture_names(), new]) == [new]  # the guard notices a new file
    stale = [n for n in [*CHECKS, *NOT_MODELS] if not (FIXTURES / "docs" / n).is_file()]
    assert not stale, f"entries for missing fixtures: {stale}"


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_structures(name: str, strict: bool) -> None:
    CHECKS[name](load(name), strict)


@pytest.mark.parametrize("name", sorted(n for n in NOT_MODELS if "delete" in n))
def test_delete_returns_null(name: str) -> None:
    assert load(name)["result"] is None


# --- what b24pysdk's live-portal test asserts ------------------------------------------------


def test_pysdk_facts_hold() -> None:
    facts = json.loads(PYSDK_ASSERTIONS.read_text(encoding="utf-8"))
    wrappers = {"add": "document", "get": "document", "update": "document", "list": "documents"}
    assert facts["result_wrapper_key"] == wrappers | {"enablepublicurl": "publicUrl"}
    # Every field asserted present on add/get is known to the strict converter and kept.
    wire = load(DG + "document.get.response.json")["result"]["document"]
    wire |= {"updatedBy": "578", "publicUrl": "https://x/~1"}
    asserted = {key: wire[key] for key in facts["fields_asserted_present_in_add_and_get"]}
    doc = structure(asserted, Document, strict=True)
    assert [key for key in asserted if getattr(doc, _snake(key)) is None] == []
    # get sends string ids ("2", "5", "1"); the model holds ints.
    doc = structure(wire | {"entityTypeId": "2", "entityId": "5", "templateId": "1"}, Document)
    assert (doc.entity_type_id, doc.entity_id, doc.template_id, doc.id) == (2, 5, 1, 61)


def _snake(wire_name: str) -> str:
    wire_name = {"createTime": "createdTime", "updateTime": "updatedTime"}.get(wire_name, wire_name)
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in wire_name)
