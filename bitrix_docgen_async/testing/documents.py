"""``crm.documentgenerator.document.*`` handlers: add, update, get, list, delete, getfields,
enablepublicurl (``upload`` is in :mod:`.uploads`; shapes in :mod:`.shapes`; errors as
docs/portal.md#document-generator-errors).

A generated document's DOCX is its template's DOCX with every ``{Placeholder}`` replaced: the
values passed in win, then ``DocumentNumber``, ``DocumentTitle`` and ``DocumentCreateTime``;
unknown ones become empty. Its number comes from the template's numerator unless
``values.DocumentNumber`` is given (then no number is used up). The title is the template name
and the number. ``update`` merges the new values, re-renders and restarts the PDF conversion;
until that is done the previous render's PDF and image are shown (see :mod:`.conversion`).

Choices where the docs disagree or are silent:

* An ``entityTypeId`` that is not a CRM type (1, 2, 3, 4, 5, 7, 14, 31, or a smart-process type
  from 128 up), or that the template is not bound to, gives ``"0"`` ``No provider for
  entityTypeId``: the tutorial says such a call creates no document
  (docs/portal.md#document-generator, #where-the-sources-disagree), and that is the documented error
  for a type without a provider. Pipeline suffixes of the binding (``2_category_0``) are not
  checked.
* ``document.add`` does not check that the CRM item exists; a missing, empty or zero
  ``entityId`` gives ``"0"`` ``Empty required parameter "value"``.
* ``enablepublicurl`` with ``status=0`` answers ``null``.
* ``list`` sorts by ``id`` ascending unless ``order`` says otherwise. Its ``filter`` names the
  fields exactly as the documents show them (camelCase) with the nine documented prefixes;
  ``ENTITY_TYPE_ID``, ``entity_id`` or ``%title`` are unknown fields (docs/portal.md#pagination,
  docs/portal.md#wire-quirks).
"""

from __future__ import annotations

import secrets
from typing import Any

from bitrix_docgen_async.testing.conversion import Conversion
from bitrix_docgen_async.testing.events import DOCUMENT_ADD, DOCUMENT_DELETE, DOCUMENT_UPDATE, emit
from bitrix_docgen_async.testing.files import render_docx
from bitrix_docgen_async.testing.listing import filter_rows, parse_filter, select_keys, sort_rows
from bitrix_docgen_async.testing.numerators import next_number
from bitrix_docgen_async.testing.params import fields_param, to_flag, to_int
from bitrix_docgen_async.testing.records import DocumentRecord, TemplateRecord, now
from bitrix_docgen_async.testing.shapes import LIST_KEYS, describe_fields, document_wire, list_row
from bitrix_docgen_async.testing.state import (
    CallContext,
    MethodRegistry,
    PortalError,
    PortalState,
    paginate,
)
from bitrix_docgen_async.testing.templates import find_template

__all__ = [
    "create_document",
    "entity_id_of",
    "event_fields",
    "new_file_ids",
    "provider_type",
    "register_documents",
]

_PREFIX = "crm.documentgenerator.document."
_CRM_TYPES = frozenset({1, 2, 3, 4, 5, 7, 14, 31})
#: What a ``document.list`` filter may name: the document's own fields as it returns them
#: (camelCase), and ``entityTypeId``/``entityId`` as in the docs' filter example.
_FILTER = (
    "id", "templateId", "entityTypeId", "entityId", "number", "title", "createTime",
    "updateTime", "createdBy", "updatedBy", "fileId", "imageId", "pdfId",
)  # fmt: skip
#: The ORM entity the docs' unknown-field message names (``document.list`` page).
_ENTITY = "\\Bitrix\\DocumentGenerator\\Model\\Document"


def provider_type(value: Any, template: TemplateRecord | None = None) -> int:
    """The entity type id, if it is a CRM type (that ``template`` is bound to, if given).

    Raises:
        PortalError: ``"0"`` ``No provider for entityTypeId``.
    """
    entity_type_id = to_int(value)
    if (
        entity_type_id is None
        or not (entity_type_id in _CRM_TYPES or entity_type_id >= 128)
        or (template is not None and not template.binds(entity_type_id))
    ):
        raise PortalError("0", "No provider for entityTypeId")
    return entity_type_id


def entity_id_of(value: Any) -> int:
    """The entity id; ``"0"`` ``Empty required parameter "value"`` when missing or zero."""
    entity_id = to_int(value)
    if not entity_id:
        raise PortalError("0", 'Empty required parameter "value"')
    return entity_id


def new_file_ids(state: PortalState) -> tuple[int, int, int, int]:
    """New ``fileId``, ``imageId``, ``pdfId`` and ``emailDiskFile`` values."""
    return (
        state.next_id("file"),
        state.next_id("file"),
        state.next_id("file"),
        state.next_id("file"),
    )


def _render(state: PortalState, record: DocumentRecord) -> None:
    source = record.docx if record.uploaded else state.templates[record.template_id].file
    values: dict[str, Any] = {
        "DocumentNumber": record.number,
        "DocumentTitle": record.title,
        "DocumentCreateTime": record.created.date().isoformat(),
    }
    values.update(record.values)
    record.docx = render_docx(source, values)


def event_fields(record: DocumentRecord) -> dict[str, str]:
    """``data[FIELDS]`` of a document event."""
    return {
        "ID": str(record.id),
        "ENTITY_TYPE_ID": str(record.entity_type_id),
        "ENTITY_ID": str(record.entity_id),
    }


def create_document(
    state: PortalState,
    conversion: Conversion,
    template: TemplateRecord,
    entity_type_id: Any,
    entity_id: Any,
    values: dict[str, Any],
    *,
    stamps_enabled: bool,
    user_id: int,
    source: str = "",
) -> DocumentRecord:
    """Generate a document from ``template`` (the work of ``document.add``).

    Raises:
        PortalError: the template is deleted, the entity type has no provider, the entity id is
            empty, or the numerator is gone (see the module docstring).
    """
    if template.is_deleted:
        raise PortalError("0", "Cannot create document on deleted template")
    type_id = provider_type(entity_type_id, template)
    item_id = entity_id_of(entity_id)
    given = values.get("DocumentNumber")
    number = str(given) if given not in (None, "") else next_number(state, template.numerator_id)
    record = DocumentRecord(
        id=state.next_id("document"),
        template_id=template.id,
        entity_type_id=type_id,
        entity_id=item_id,
        title=f"{template.name} {number}",
        number=number,
        values=dict(values),
        stamps_enabled=stamps_enabled,
        created_by=user_id,
        docx=b"",
        file_ids=new_file_ids(state),
    )
    _render(state, record)
    conversion.start(record)
    state.documents[record.id] = record
    emit(state, DOCUMENT_ADD, event_fields(record), source=source)
    return record


def _find(ctx: CallContext, params: dict[str, Any]) -> DocumentRecord:
    value = params.get("id")
    if value in (None, "", 0, "0"):
        raise PortalError(
            "100", "Bitrix\\DocumentGenerator\\Document constructor must be is public"
        )
    record = ctx.state.documents.get(to_int(value) or 0)
    if record is None:
        raise PortalError("0", "Document not found")
    return record


def _values(params: dict[str, Any]) -> dict[str, Any]:
    if params.get("values") in (None, "", []):
        return {}
    return dict(fields_param(params, "values"))


def add(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``document.add``: ``templateId``*, ``entityTypeId``*, ``entityId``*, ``values``, ..."""
    template = find_template(ctx, params.get("templateId"), deleted_ok=True)
    values = _values(params)
    stamps = to_flag(params.get("stampsEnabled"), False)
    record = create_document(
        ctx.state,
        ctx.portal.conversion,
        template,
        params.get("entityTypeId"),
        params.get("entityId"),
        values,
        stamps_enabled=stamps,
        user_id=ctx.auth.user_id,
        source=ctx.auth_connector,
    )
    return {"document": document_wire(ctx, record, "add")}


def update(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``document.update``: ``id``*, ``values``, ``stampsEnabled`` (default 1)."""
    record = _find(ctx, params)
    values = _values(params)
    record.values.update(values)
    if values.get("DocumentNumber") not in (None, ""):
        record.number = str(values["DocumentNumber"])
    record.stamps_enabled = to_flag(params.get("stampsEnabled"), True)
    record.updated_by, record.updated = ctx.auth.user_id, now()
    _render(ctx.state, record)
    image_id, pdf_id = ctx.state.next_id("file"), ctx.state.next_id("file")
    ctx.portal.conversion.restart(record, image_id, pdf_id)
    emit(ctx.state, DOCUMENT_UPDATE, event_fields(record), source=ctx.auth_connector)
    return {"document": document_wire(ctx, record, "update")}


def get(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``document.get``: ``id``*."""
    return {"document": document_wire(ctx, _find(ctx, params), "get")}


def delete(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``document.delete``: ``id``*; answers ``null``."""
    record = _find(ctx, params)
    del ctx.state.documents[record.id]
    emit(ctx.state, DOCUMENT_DELETE, event_fields(record), source=ctx.auth_connector)
    return None


def getfields(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``document.getfields``: ``id``*, ``values`` (a what-if that changes nothing)."""
    record = _find(ctx, params)
    values = {**record.values, **_values(params)}
    fields = describe_fields(ctx.state.templates[record.template_id], record.number, values)
    return {"documentFields": fields}


def enablepublicurl(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``document.enablepublicurl``: ``id``*, ``status`` 1/0 (default 1)."""
    record = _find(ctx, params)
    if not to_flag(params.get("status"), True):
        record.public_path = None
        return None
    if record.public_path is None:
        record.public_path = f"/pub/~{secrets.token_urlsafe(4)}"
    return {"publicUrl": ctx.base_url + record.public_path}


def _flat(record: DocumentRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "templateId": record.template_id,
        "entityTypeId": record.entity_type_id,
        "entityId": record.entity_id,
        "number": record.number,
        "title": record.title,
        "createTime": record.created.isoformat(),
        "updateTime": record.updated.isoformat(),
        "createdBy": record.created_by,
        "updatedBy": record.updated_by,
        "fileId": record.file_ids[0],
        "imageId": record.file_ids[1],
        "pdfId": record.file_ids[2],
    }


def list_(ctx: CallContext, params: dict[str, Any]) -> tuple[Any, int, int | None]:
    """``document.list``: ``select`` (default ``["*"]``), ``filter``, ``order``, ``start``."""
    conditions = parse_filter(params, _FILTER, _ENTITY, strict=True)
    keys = tuple(select_keys(params, LIST_KEYS, (), _ENTITY, refused=("entityTypeId",)))
    rows = filter_rows([r for _, r in sorted(ctx.state.documents.items())], conditions, _flat)
    rows = sort_rows(rows, params, _FILTER, _ENTITY, _flat, {"id": "asc"})
    page, total, following = paginate(rows, params.get("start", 0))
    return {"documents": [list_row(ctx, record, keys) for record in page]}, total, following


def register_documents(registry: MethodRegistry) -> None:
    """Register the document methods but ``upload`` (see :mod:`.uploads`)."""
    registry.register(_PREFIX + "add", add)
    registry.register(_PREFIX + "update", update)
    registry.register(_PREFIX + "get", get)
    registry.register(_PREFIX + "list", list_, paged=True)
    registry.register(_PREFIX + "delete", delete)
    registry.register(_PREFIX + "getfields", getfields)
    registry.register(_PREFIX + "enablepublicurl", enablepublicurl)
