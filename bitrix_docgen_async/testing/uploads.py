"""``crm.documentgenerator.document.upload``: attach a ready-made document to a CRM item.

``fields`` = {entityTypeId*, entityId*, fileContent* (base64 DOCX), region*, title*, number*,
pdfContent, imageContent}; answers ``{"document": {...}}`` shaped like ``document.get`` (string
ids, ``values`` without ``stampsEnabled``, as in the docs' example). As the docs describe, the
document belongs to a hidden template, one per application, that is not listed. The upload goes
through the PDF conversion like ``document.add``, ``pdfContent`` and ``imageContent``
notwithstanding: the docs' example sends ``pdfContent`` and its answer has no
``pdfUrl``/``imageUrl`` (docs/portal.md#wire-quirks).

Errors as the upload page shows them: missing fields give ``"0"`` ``Empty required fields:
entityTypeId, fileContent, region, entityId`` (only the missing ones, in that order; ``title``
and ``number`` follow, an inference: the page's example gives both); an entity type without a
CRM provider ``"0"`` ``Wrong "entityTypeId" field value``, an entity id that is not a positive
number ``"0"`` ``Wrong "entityId" field value``. Choices where the docs are silent: content
that is not strict base64 of a ``.docx`` (or a bad ``pdfContent`` or ``imageContent``) gives
``Could not save file``.
"""

from __future__ import annotations

from typing import Any

from bitrix_docgen_async.testing.documents import event_fields, new_file_ids, provider_type
from bitrix_docgen_async.testing.events import DOCUMENT_ADD, emit
from bitrix_docgen_async.testing.files import build_docx, decode_base64, is_docx
from bitrix_docgen_async.testing.params import fields_param, to_int
from bitrix_docgen_async.testing.records import DocumentRecord, TemplateRecord
from bitrix_docgen_async.testing.shapes import document_wire
from bitrix_docgen_async.testing.state import CallContext, MethodRegistry, PortalError
from bitrix_docgen_async.testing.templates import store_template

__all__ = ["register_upload", "upload"]

_REQUIRED = ("entityTypeId", "fileContent", "region", "entityId", "title", "number")


def _content(value: Any) -> bytes | None:
    if value in (None, ""):
        return None
    data = decode_base64(value)
    if data is None:
        raise PortalError("0", "Could not save file")
    return data


def _upload_template(ctx: CallContext, region: str) -> TemplateRecord:
    template_id = ctx.state.upload_templates.get(ctx.auth.identity)
    if template_id is not None:
        return ctx.state.templates[template_id]
    template = store_template(
        ctx.state,
        name="REST documents",
        file=build_docx(""),
        numerator_id=0,
        entity_type_ids=[],
        region=region,
        users=[f"U{ctx.auth.user_id}"],
        hidden=True,
    )
    ctx.state.upload_templates[ctx.auth.identity] = template.id
    return template


def upload(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``document.upload``: ``fields`` {entityTypeId*, entityId*, fileContent*, region*, ...}."""
    fields = fields_param(params)
    missing = [key for key in _REQUIRED if fields.get(key) in (None, "")]
    if missing:
        raise PortalError("0", "Empty required fields: " + ", ".join(missing))
    try:
        type_id = provider_type(fields["entityTypeId"])
    except PortalError:
        raise PortalError("0", 'Wrong "entityTypeId" field value') from None
    item_id = to_int(fields["entityId"])
    if item_id is None or item_id <= 0:
        raise PortalError("0", 'Wrong "entityId" field value')
    docx = _content(fields["fileContent"])
    if docx is None or not is_docx(docx):
        raise PortalError("0", "Could not save file")
    # Checked, but not used as the result: the portal converts the DOCX all the same.
    _content(fields.get("pdfContent"))
    _content(fields.get("imageContent"))
    template = _upload_template(ctx, str(fields["region"]))
    record = DocumentRecord(
        id=ctx.state.next_id("document"),
        template_id=template.id,
        entity_type_id=type_id,
        entity_id=item_id,
        title=str(fields["title"]),
        number=str(fields["number"]),
        values={},
        stamps_enabled=False,
        created_by=ctx.auth.user_id,
        docx=docx,
        file_ids=new_file_ids(ctx.state),
        uploaded=True,
    )
    ctx.portal.conversion.start(record)
    ctx.state.documents[record.id] = record
    emit(ctx.state, DOCUMENT_ADD, event_fields(record), source=ctx.auth_connector)
    return {"document": document_wire(ctx, record, "upload")}


def register_upload(registry: MethodRegistry) -> None:
    """Register ``crm.documentgenerator.document.upload``."""
    registry.register("crm.documentgenerator.document.upload", upload)
