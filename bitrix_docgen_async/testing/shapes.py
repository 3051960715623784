"""How the docgen methods show templates, documents and fields: the portal's wire quirks.

See docs/portal.md#wire-quirks.

Templates: string ``id``/``numeratorId``/``sort``, ``"Y"``/``"N"`` flags, ``entityTypeId`` an
array of strings, ``users`` an object ``{"UA": "UA"}`` except in ``list`` (an array); the key
order of the docs' ``add``/``update`` and ``get`` examples.

Documents, per method, following the docs' examples:

* ``add``: ``id`` and ``createdBy`` are ints, ``updatedBy`` ``null``;
* ``get``/``upload``: ``id``, ``createdBy``, ``updatedBy`` strings (``updatedBy`` ``null`` until
  an update);
* ``update``: ``id`` a string, ``createdBy`` ``null`` and ``updatedBy`` an int, as the docs'
  ``document.update`` example shows;
* ``list`` rows: a shorter shape with ``fileId``/``imageId``/``pdfId`` strings.

``templateId``, ``entityTypeId`` and ``entityId`` are strings everywhere. ``values`` holds the
service keys ``productsTableVariant`` and ``_creationMethod`` (and ``stampsEnabled``, except for
uploaded documents); ``add`` and ``update`` follow them with the values passed in, but a
document read back (``get``) shows the service keys only, and a ``list`` row only
``_creationMethod`` and ``stampsEnabled``: the docs' examples of one document show exactly this
(docs/portal.md#wire-quirks). ``pdfUrl``/``imageUrl`` appear once the
conversion is done (see :mod:`.conversion`); their ``*Machine`` forms only in ``get`` and
``list``, as in the docs. ``isTransformationError`` is in every shape but ``list``.
"""

from __future__ import annotations

from typing import Any

from bitrix_docgen_async.testing.conversion import ERROR_CODE, ERROR_MESSAGE
from bitrix_docgen_async.testing.downloads import browser_url, machine_url
from bitrix_docgen_async.testing.records import DocumentRecord, TemplateRecord
from bitrix_docgen_async.testing.state import CallContext
from bitrix_docgen_async.testing.wire import php_array

__all__ = [
    "LIST_KEYS",
    "describe_fields",
    "document_wire",
    "list_row",
    "service_values",
    "template_wire",
]

#: Every key of a ``document.list`` row, in output order (``select=["*"]``).
LIST_KEYS = (
    "id", "title", "number", "templateId", "fileId", "imageId", "pdfId", "createTime",
    "updateTime", "values", "createdBy", "updatedBy", "downloadUrl", "pdfUrl", "imageUrl",
    "stampsEnabled", "entityId", "entityTypeId", "downloadUrlMachine", "pdfUrlMachine",
    "imageUrlMachine",
)  # fmt: skip
_ORDER = {
    "add": (
        "id", "name", "region", "code", "download", "active", "moduleId", "numeratorId",
        "withStamps", "users", "isDeleted", "sort", "downloadMachine", "entityTypeId",
        "createTime", "updateTime",
    ),
    "get": (
        "id", "name", "region", "code", "download", "downloadMachine", "active", "moduleId",
        "numeratorId", "withStamps", "users", "isDeleted", "sort", "entityTypeId", "createTime",
        "updateTime",
    ),
}  # fmt: skip
_REASONS = {
    "add": ("The template is missing seals and signatures", "The template is missing a QR code"),
    "get": ("No seals or signatures in the template", "No QR code in the template"),
}


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)


def service_values(record: DocumentRecord, shape: str = "add") -> dict[str, Any]:
    """``values`` as the document methods show them (``shape`` as in :func:`document_wire`).

    ``add``/``update`` echo the values passed in after the service keys; ``get``/``upload``
    show the service keys only; a ``list`` row ``_creationMethod`` and ``stampsEnabled``.
    """
    values: dict[str, Any] = {"productsTableVariant": "", "_creationMethod": "rest"}
    if not record.uploaded:
        values["stampsEnabled"] = record.stamps_enabled
    if shape in ("add", "update"):
        values.update(record.values)
    elif shape == "list":
        del values["productsTableVariant"]
    return values


def _authors(record: DocumentRecord, shape: str) -> tuple[Any, Any]:
    if shape == "add":
        return record.created_by, record.updated_by
    if shape == "update":
        return None, record.updated_by
    return str(record.created_by), _text(record.updated_by)


def document_wire(ctx: CallContext, record: DocumentRecord, shape: str) -> dict[str, Any]:
    """The document as ``add``, ``get``, ``update`` or ``upload`` (``shape``) show it."""
    template = ctx.state.templates.get(record.template_id)
    stamps = template is not None and template.with_stamps == "Y"
    reasons = _REASONS["add" if shape in ("add", "upload") else "get"]
    status = ctx.portal.conversion.view(record).status
    base = ctx.base_url
    created_by, updated_by = _authors(record, shape)
    wire: dict[str, Any] = {
        "changeStampsEnabled": stamps,
        "changeStampsDisabledReason": "" if stamps else reasons[0],
        "changeQrCodeEnabled": False,
        "qrCodeEnabled": False,
        "changeQrCodeDisabledReason": reasons[1],
        "products": {"currencyId": "EUR", "totalSum": "0.00", "totalRows": 0},
        "downloadUrl": browser_url(base, "docx", record.id),
        "downloadUrlMachine": machine_url(ctx, "docx", record.id),
        "publicUrl": None if record.public_path is None else base + record.public_path,
        "id": record.id if shape == "add" else str(record.id),
        "title": record.title,
        "number": record.number,
        "createTime": record.created.isoformat(),
        "createdBy": created_by,
        "updateTime": record.updated.isoformat(),
        "updatedBy": updated_by,
        "stampsEnabled": record.stamps_enabled,
        "isTransformationError": status == "failed",
    }
    if status == "failed":
        wire["transformationErrorCode"] = ERROR_CODE
        wire["transformationErrorMessage"] = ERROR_MESSAGE
    wire["values"] = service_values(record, shape)
    wire["templateId"] = str(record.template_id)
    wire["pullTag"] = f"TRANSFORMDOCUMENT{record.id}"
    if status == "ready":
        wire["imageUrl"] = browser_url(base, "image", record.id)
        wire["pdfUrl"] = browser_url(base, "pdf", record.id)
    wire["emailDiskFile"] = record.file_ids[3]
    wire["entityId"] = str(record.entity_id)
    wire["entityTypeId"] = str(record.entity_type_id)
    if shape == "get" and status == "ready":
        wire["imageUrlMachine"] = machine_url(ctx, "image", record.id)
        wire["pdfUrlMachine"] = machine_url(ctx, "pdf", record.id)
    return wire


def list_row(ctx: CallContext, record: DocumentRecord, keys: tuple[str, ...]) -> dict[str, Any]:
    """A ``document.list`` row with the selected ``keys`` (file keys only once converted)."""
    shown = ctx.portal.conversion.view(record)
    ready = shown.status == "ready"
    file_id, image_id, pdf_id = record.file_ids[0], shown.image_id, shown.pdf_id
    base = ctx.base_url
    row: dict[str, Any] = {
        "id": str(record.id),
        "title": record.title,
        "number": record.number,
        "templateId": str(record.template_id),
        "fileId": str(file_id),
        "imageId": str(image_id) if ready else None,
        "pdfId": str(pdf_id) if ready else None,
        "createTime": record.created.isoformat(),
        "updateTime": record.updated.isoformat(),
        "values": service_values(record, "list"),
        "createdBy": str(record.created_by),
        "updatedBy": _text(record.updated_by),
        "downloadUrl": browser_url(base, "docx", record.id),
        "stampsEnabled": record.stamps_enabled,
        "entityId": str(record.entity_id),
        "entityTypeId": str(record.entity_type_id),
    }
    if "downloadUrlMachine" in keys:
        row["downloadUrlMachine"] = machine_url(ctx, "docx", record.id)
    if ready:
        row["pdfUrl"] = browser_url(base, "pdf", record.id)
        row["imageUrl"] = browser_url(base, "image", record.id)
        if "pdfUrlMachine" in keys:
            row["pdfUrlMachine"] = machine_url(ctx, "pdf", record.id)
        if "imageUrlMachine" in keys:
            row["imageUrlMachine"] = machine_url(ctx, "image", record.id)
    return {key: row[key] for key in keys if key in row}


def template_wire(ctx: CallContext, record: TemplateRecord, shape: str = "get") -> dict[str, Any]:
    """The template as ``add``/``update`` (``shape="add"``), ``get`` or ``list`` show it."""
    values: dict[str, Any] = {
        "id": str(record.id),
        "name": record.name,
        "region": record.region,
        "code": record.code,
        "download": browser_url(ctx.base_url, "template", record.id),
        "downloadMachine": machine_url(ctx, "template", record.id),
        "active": record.active,
        "moduleId": "crm",
        "numeratorId": str(record.numerator_id),
        "withStamps": record.with_stamps,
        "users": list(record.users) if shape == "list" else php_array({u: u for u in record.users}),
        "isDeleted": "Y" if record.is_deleted else "N",
        "sort": str(record.sort),
        "entityTypeId": list(record.entity_type_ids),
        "createTime": record.created.isoformat(),
        "updateTime": record.updated.isoformat(),
    }
    return {key: values[key] for key in _ORDER.get(shape, _ORDER["get"])}


def describe_fields(
    template: TemplateRecord, number: str, values: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The field descriptors of ``getfields``: the standard ones plus the template's own.

    A ``DocumentNumber`` given in ``values`` shows as both ``value`` and ``default``, as the
    docs' ``template.getfields`` example (``values.DocumentNumber = "2026-001"``) does.
    """
    given = values.get("DocumentNumber")
    shown = number if given in (None, "") else given
    fields: dict[str, dict[str, Any]] = {
        "DocumentNumber": {
            "title": "Number",
            "value": shown,
            "required": "Y",
            "group": ["Document"],
            "chain": "this.DOCUMENT.DOCUMENT_NUMBER",
            "default": shown,
        },
        "MyCompanyUfLogo": {
            "title": "Logo",
            "value": values.get("MyCompanyUfLogo"),
            "type": "IMAGE",
            "group": ["Document", "My Company"],
            "chain": "this.SOURCE.MY_COMPANY.UF_LOGO",
            "default": None,
        },
        "MY_COMPANY": {
            "title": "My Company",
            "value": [{"value": "1", "title": "My Company", "selected": True}],
            "group": ["Document", "My Company"],
        },
    }
    for name in template.placeholders:
        if name not in fields:
            fields[name] = {
                "title": name,
                "value": values.get(name),
                "group": ["Document"],
                "default": None,
            }
    return fields
