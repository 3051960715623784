"""``crm.documentgenerator.document.upload``: attach a ready-made document to a CRM item.

``fields`` = {entityTypeId*, entityId*, fileContent* (base64 DOCX), region*, title*, number*,
pdfContent, imageContent}; answers ``{"document": {...}}`` shaped like ``document.get`` (string
ids, ``values`` without ``stampsEnabled``, as in the docs' example). As the docs describe, the
document belongs to a hidden template, one per application, that is not listed. With
``pdfContent`` the PDF (and ``imageContent``, or a generated image) is there at once; without it
the upload goes through the PDF conversion like ``document.add``.

Choices where the docs are silent: missing fields give ``"0"`` ``Empty required fields: ...``
(listing the missing ones, like ``template.add``), a missing ``fileContent`` ``Missing file
content``, content that is not strict base64 of a ``.docx`` (or a bad ``pdfContent`` or
``imageContent``) ``Could not save file``; the type and id checks are those of ``document.add``.
"""

from __future__ import annotations

from typing import Any

from bitrix_docgen_async.testing.documents import (
    entity_id_of,
    event_fields,
    new_file_ids,
    provider_type,
)
from bitrix_docgen_async.testing.events import DOCUMENT_ADD, emit
from bitrix_docgen_async.testing.files import build_docx, decode_base64, is_docx
from bitrix_docgen_async.testing.params import fields_param
from bitrix_docgen_async.testing.records import DocumentRecord, TemplateRecord
from bitrix_docgen_async.testing.shapes import document_wire
from bitrix_docgen_async.testing.state import CallContext, MethodRegistry, PortalError
from bitrix_docgen_async.testing.templates import store_template

__all__ = ["register_upload", "upload"]

_REQUIRED = ("entityTypeId", "entityId", "region", "title", "number")


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
    if fields.get("fileContent") in (None, ""):
        raise PortalError("0", "Missing file content")
    type_id, item_id = provider_type(fields["entityTypeId"]), entity_id_of(fields["entityId"])
    docx = _content(fields["fileContent"])
    if docx is None or not is_docx(docx):
        raise PortalError("0", "Could not save file")
    pdf, image = _content(fields.get("pdfContent")), _content(fields.get("imageContent"))
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
    if pdf is not None:
        ctx.portal.conversion.finish_now(record, pdf, image)
    else:
        ctx.portal.conversion.start(record)
    ctx.state.documents[record.id] = record
    emit(ctx.state, DOCUMENT_ADD, event_fields(record))
    return {"document": document_wire(ctx, record, "upload")}


def register_upload(registry: MethodRegistry) -> None:
    """Register ``crm.documentgenerator.document.upload``."""
    registry.register("crm.documentgenerator.document.upload", upload)
