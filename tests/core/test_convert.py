"""Tests for core.convert: every wire quirk, the strict/lenient split, errors and redaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitrix_docgen_async.core.convert import (
    SEQUENT_GENERATOR,
    converter,
    strict_converter,
    structure,
    structure_fields,
    structure_templates,
    unstructure_params,
)
from bitrix_docgen_async.errors import ResponseError
from bitrix_docgen_async.models import (
    Document,
    DocumentEventType,
    EntityType,
    FieldDescription,
    Numerator,
    Page,
    ProductsSummary,
    SequentSettings,
    Template,
)

SECRET = (
    "https://portal.example/rest/crm.documentgenerator.document.getPdf.json?auth=s3cr3t&token=t0k"
)


def document(**wire: Any) -> dict[str, Any]:
    """A minimal ``document.get`` object, with ``wire`` keys added or replaced."""
    base = {
        "id": "61",
        "title": "Act",
        "number": "2026-001",
        "templateId": "39",
        "entityTypeId": "2",
        "entityId": "101",
    }
    return base | wire


def template(**wire: Any) -> dict[str, Any]:
    """A minimal ``template.get`` object, with ``wire`` keys added or replaced."""
    return {"id": "41", "name": "Act template"} | wire


# --- flags -----------------------------------------------------------------------------------


@pytest.mark.parametrize("wire", [True, "Y", "y", "1", 1, "true", "TRUE", " Y "])
def test_true_flags(wire: Any) -> None:
    assert structure(wire, bool) is True


@pytest.mark.parametrize("wire", [False, "N", "n", "0", 0, "false", "False"])
def test_false_flags(wire: Any) -> None:
    assert structure(wire, bool) is False


def test_n_is_false_in_a_model_unlike_cattrs_default() -> None:
    tpl = structure(template(active="N", withStamps="Y", isDeleted="N"), Template)
    assert (tpl.active, tpl.with_stamps, tpl.is_deleted) == (False, True, False)
    assert converter.structure("N", bool) is False


@pytest.mark.parametrize("wire", ["maybe", 2, -1, 1.0, None, "", [], {}, "yes"])
def test_bad_flag_raises_response_error(wire: Any) -> None:
    with pytest.raises(ResponseError) as info:
        structure(wire, bool)
    assert info.value.status == 200
    assert info.value.detail  # cattrs' transform_error lines
    assert str(info.value).startswith("cannot read bool")


def test_bad_flag_in_a_model_names_the_field() -> None:
    with pytest.raises(ResponseError) as info:
        structure(template(active="maybe"), Template)
    assert str(info.value) == "cannot read Template (HTTP 200)"
    assert info.value.detail == ("expected a flag: true/false, Y/N, 1/0 @ $.active",)


def test_empty_optional_flag_is_none() -> None:
    assert structure(template(active="", withStamps=None), Template).active is None


# --- numbers and ids -------------------------------------------------------------------------


def test_int_and_string_ids_read_the_same() -> None:
    from_add = structure(document(id=61, templateId=39, entityId=101, createdBy=577), Document)
    from_get = structure(document(createdBy="577"), Document)
    assert from_add == from_get
    assert (from_get.id, from_get.template_id, from_get.entity_id) == (61, 39, 101)
    assert from_get.created_by == 577
    assert structure({"id": 45, "name": "n", "template": "{NUMBER}"}, Numerator).id == 45
    assert structure({"id": "45", "name": "n", "template": "{NUMBER}"}, Numerator).id == 45


@given(st.integers())
def test_ints_from_numbers_and_strings(number: int) -> None:
    assert structure(number, int) == number
    assert structure(str(number), int) == number


@pytest.mark.parametrize("wire", ["6x1", "1.5", "", True, 1.0, None, "٣"])
def test_bad_id_raises(wire: Any) -> None:
    with pytest.raises(ResponseError) as info:
        structure(document(id=wire), Document)
    assert info.value.detail == ("expected an integer or a string of digits @ $.id",)


def test_empty_optional_number_is_none() -> None:
    doc = structure(document(createdBy="", updatedBy=None, emailDiskFile=""), Document)
    assert (doc.created_by, doc.updated_by, doc.email_disk_file) == (None, None, None)


def test_products_total_is_decimal() -> None:
    doc = structure(document(products={"currencyId": "EUR", "totalSum": "10.50"}), Document)
    assert doc.products == ProductsSummary(currency_id="EUR", total_sum=Decimal("10.50"))
    with pytest.raises(ResponseError):
        structure(document(products={"totalSum": "ten"}), Document)


def test_entity_type_enum_from_string() -> None:
    assert structure("2", EntityType) is EntityType.DEAL
    assert structure(31, EntityType) is EntityType.SMART_INVOICE
    with pytest.raises(ResponseError):
        structure("6", EntityType)


# --- times -----------------------------------------------------------------------------------


def test_times_are_aware() -> None:
    doc = structure(document(createTime="2026-03-17T11:09:17+03:00", updateTime=""), Document)
    assert doc.created_time == datetime(2026, 3, 17, 8, 9, 17, tzinfo=UTC)
    assert doc.created_time is not None
    assert doc.created_time.utcoffset() == timedelta(hours=3)
    assert doc.updated_time is None


@pytest.mark.parametrize(
    ("wire", "problem"),
    [
        ("2026-03-17T11:09:17", "expected a time with a UTC offset"),
        ("yesterday", "expected an ISO 8601 time"),
        (1773734957, "expected an ISO 8601 time"),
    ],
)
def test_naive_or_bad_times_raise(wire: Any, problem: str) -> None:
    with pytest.raises(ResponseError) as info:
        structure(document(createTime=wire), Document)
    assert info.value.detail == (f"{problem} @ $.created_time",)


# --- objects and lists -----------------------------------------------------------------------


def test_empty_list_means_empty_object() -> None:
    doc = structure(document(values=[], products=[]), Document)
    assert doc.values == {}
    assert doc.products == ProductsSummary()
    num = structure({"id": "1", "name": "n", "template": "{NUMBER}", "settings": []}, Numerator)
    assert num.settings == {}
    assert num.sequent is None
    assert structure_fields([]) == {}
    assert structure_templates([]) == []


def test_a_php_list_is_an_object_keyed_by_index() -> None:
    assert structure(document(values=["a", "b"]), Document).values == {"0": "a", "1": "b"}


def test_users_as_object_or_list() -> None:
    as_object = structure(template(users={"UA": "UA", "U5": "U5"}), Template)
    as_list = structure(template(users=["UA", "U5"]), Template)
    assert as_object.users == as_list.users == ("UA", "U5")
    assert structure(template(users=[]), Template).users == ()


def test_templates_keyed_by_id_keep_the_portals_order() -> None:
    rows = {"39": template(id="39"), "37": template(id="37"), "41": template(id=41)}
    assert [t.id for t in structure_templates(rows)] == [39, 37, 41]
    assert [t.id for t in structure_templates(list(rows.values()))] == [39, 37, 41]


def test_bad_template_row_names_its_key() -> None:
    with pytest.raises(ResponseError) as info:
        structure_templates({"39": template(id="39"), "37": template(id="x")})
    assert str(info.value) == "cannot read Template (HTTP 200)"
    assert any("$['37'].id" in line for line in info.value.detail)


def test_fields_take_their_code_from_the_key() -> None:
    fields = structure_fields({"Total": {"value": "5", "required": "N", "hideRow": "Y"}})
    assert fields == {
        "Total": FieldDescription(code="Total", value="5", required=False, hide_row=True)
    }
    assert structure_fields({"Empty": []})["Empty"] == FieldDescription(code="Empty")


def test_numerator_sequent_settings() -> None:
    wire = {
        "id": "45",
        "name": "n",
        "template": "{NUMBER}",
        "settings": {SEQUENT_GENERATOR: {"start": "100", "padString": "0", "periodicBy": "year"}},
    }
    num = structure(wire, Numerator, strict=True)
    assert num.sequent == SequentSettings(start=100, pad_string="0", periodic_by="year")
    assert num.settings == wire["settings"]


def test_event_type_in_any_case() -> None:
    for wire in ("ONCRMDOCUMENTGENERATORDOCUMENTADD", "onCrmDocumentGeneratorDocumentAdd"):
        assert structure(wire, DocumentEventType) is DocumentEventType.ADD
    assert DocumentEventType("onCrmDocumentGeneratorDocumentDelete") is DocumentEventType.DELETE
    with pytest.raises(ResponseError):
        structure("ONCRMDEALADD", DocumentEventType)


def test_not_an_object_raises() -> None:
    for wire in ("61", None, 61, ["61"]):
        with pytest.raises(ResponseError) as info:
            structure(wire, Document)
        assert info.value.detail


def test_missing_required_field() -> None:
    with pytest.raises(ResponseError) as info:
        structure({"id": "61"}, Document)
    assert "required field missing @ $.title" in info.value.detail


# --- strict vs lenient -----------------------------------------------------------------------


def test_strict_rejects_extra_keys_lenient_ignores_them() -> None:
    wire = document(brandNewField="x")
    assert structure(wire, Document).id == 61
    with pytest.raises(ResponseError) as info:
        structure(wire, Document, strict=True)
    assert info.value.detail == ("extra fields found (brandNewField) @ $",)
    with pytest.raises(ResponseError):
        structure_templates({"1": template(id="1", surprise=1)}, strict=True)
    with pytest.raises(ResponseError):
        structure_fields({"F": {"value": "", "surprise": 1}}, strict=True)


def test_both_converters_share_the_hooks() -> None:
    for conv in (converter, strict_converter):
        assert conv.structure("N", bool) is False
        assert conv.structure(document(), Document).entity_type_id == 2


# --- URLs and secrets ------------------------------------------------------------------------


def test_empty_url_is_none() -> None:
    doc = structure(document(pdfUrl="", pdfUrlMachine="", publicUrl=None), Document)
    assert (doc.pdf_url, doc.pdf_url_machine, doc.public_url) == (None, None, None)
    assert structure(template(download="", downloadMachine=""), Template).download_machine is None


def test_machine_urls_stay_out_of_repr() -> None:
    wire = document(downloadUrlMachine=SECRET, pdfUrlMachine=SECRET, imageUrlMachine=SECRET)
    doc = structure(wire, Document)
    assert doc.pdf_url_machine == SECRET
    for text in (repr(doc), str(doc), repr([doc])):
        assert "s3cr3t" not in text
        assert "pdf_url_machine='<redacted>'" in text
    tpl = structure(template(downloadMachine=SECRET), Template)
    assert "s3cr3t" not in repr(tpl)
    assert "download_machine='<redacted>'" in repr(tpl)
    assert "download_machine=None" in repr(structure(template(), Template))


def test_errors_never_quote_the_value() -> None:
    for wire in (document(id=SECRET), document(pdfUrlMachine={"auth": SECRET})):
        with pytest.raises(ResponseError) as info:
            structure(wire, Document)
        assert "s3cr3t" not in str(info.value)
        assert all("s3cr3t" not in line for line in info.value.detail)


# --- PDF readiness ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "ready", "failed"),
    [
        ({}, False, False),
        ({"pdfUrl": "", "pdfUrlMachine": ""}, False, False),
        ({"pdfUrlMachine": SECRET}, True, False),
        ({"pdfUrl": "https://portal.example/ajax.php?id=61"}, True, False),
        ({"isTransformationError": True, "transformationErrorCode": "E1"}, False, True),
        ({"pdfUrlMachine": SECRET, "isTransformationError": "Y"}, False, True),
    ],
)
def test_pdf_ready(wire: dict[str, Any], ready: bool, failed: bool) -> None:
    doc = structure(document(**wire), Document)
    assert (doc.pdf_ready, doc.pdf_failed) == (ready, failed)


def test_transformation_error_details() -> None:
    wire = document(
        isTransformationError=True,
        transformationErrorCode="TIMEOUT",
        transformationErrorMessage="Conversion took too long",
    )
    doc = structure(wire, Document, strict=True)
    assert doc.transformation_error_code == "TIMEOUT"
    assert doc.transformation_error_message == "Conversion took too long"


# --- request parameters ----------------------------------------------------------------------


def test_unstructure_params_plain_values() -> None:
    when = datetime(2026, 3, 17, 11, 9, 17, tzinfo=timezone(timedelta(hours=3)))
    params = {
        "entityTypeId": EntityType.DEAL,
        "event": DocumentEventType.ADD,
        "when": when,
        "sum": Decimal("1.50"),
        "stampsEnabled": True,
        "values": {"A": None, "B": ("x", "y")},
        "ids": frozenset({7}),
    }
    assert unstructure_params(params) == {
        "entityTypeId": 2,
        "event": "ONCRMDOCUMENTGENERATORDOCUMENTADD",
        "when": "2026-03-17T11:09:17+03:00",
        "sum": "1.50",
        "stampsEnabled": True,
        "values": {"A": None, "B": ["x", "y"]},
        "ids": [7],
    }
    assert type(unstructure_params(EntityType.DEAL)) is int


def test_unstructure_params_models_use_wire_names() -> None:
    tpl = Template(id=5, name="Act", download_url="u", active=True, entity_type_ids=("2",))
    assert unstructure_params(tpl) == {
        "id": 5,
        "name": "Act",
        "download": "u",
        "active": True,
        "entityTypeId": ["2"],
    }
    num = Numerator(id=1, name="n", template="{NUMBER}", sequent=SequentSettings(start=5))
    assert unstructure_params(num) == {
        "id": 1,
        "name": "n",
        "template": "{NUMBER}",
        "settings": {SEQUENT_GENERATOR: {"start": 5}},
    }
    assert unstructure_params(FieldDescription(code="F", hide_row=False)) == {
        "code": "F",
        "hideRow": False,
    }


def test_wire_round_trip() -> None:
    wire = document(createTime="2026-03-17T11:09:17+03:00", pdfUrlMachine=SECRET, values={"a": 1})
    doc = structure(wire, Document, strict=True)
    assert structure(unstructure_params(doc), Document, strict=True) == doc


def test_page_is_generic_and_frozen() -> None:
    page: Page[int] = Page(items=(1, 2), total=4, next=2)
    assert page.items == (1, 2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        page.total = 5  # type: ignore[misc]
