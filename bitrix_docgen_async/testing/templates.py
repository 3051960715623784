"""``crm.documentgenerator.template.*`` handlers with the documented shapes and quirks.

docs/portal.md#document-generator, docs/portal.md#wire-quirks,
docs/portal.md#document-generator-errors and the docs' fixtures: ``add``/``update``/``get`` answer
``{"template": {...}}`` with string ``id``/``numeratorId``/``sort``, ``"Y"``/``"N"`` flags,
``entityTypeId`` an array of strings and ``users`` an object ``{"UA": "UA"}``; ``list`` answers
``{"templates": {"<id>": {...}}}`` keyed by id with ``users`` as an array, 50 per page; ``delete``
marks the template deleted and answers ``null``; ``getfields`` answers ``{"templateFields": ...}``.
A ``list`` page with no template is ``{"templates": []}``: PHP's ``json_encode`` writes an empty
array as ``[]`` (docs/portal.md#wire-quirks). ``add`` with ``users`` empty or missing gives the
template to
the current user ``U<id>``, as the ``template.add`` page says.

``file`` is accepted as ``["name.docx", "<base64>"]``, as a bare base64 string, or as a
multipart file part (which the portal turns into the two-element form). It must be strict base64
of a zip holding ``word/document.xml``; its ``{Placeholder}`` markers become template fields.
Choices where the docs are silent: an unknown ``numeratorId`` is refused with the only documented
unknown-numerator error, ``"100"`` ``Could not construct parameter {numerator}``; a missing ``id``
gives ``"100"`` ``Bitrix\\DocumentGenerator\\Template constructor must be is public``.
"""

from __future__ import annotations

from typing import Any

import attrs

from bitrix_docgen_async.testing.files import decode_base64, docx_placeholders, is_docx
from bitrix_docgen_async.testing.listing import filter_rows, parse_filter, select_keys, sort_rows
from bitrix_docgen_async.testing.numerators import next_number
from bitrix_docgen_async.testing.params import fields_param, to_int, to_list, yes_no
from bitrix_docgen_async.testing.records import TemplateRecord, now
from bitrix_docgen_async.testing.shapes import describe_fields, template_wire
from bitrix_docgen_async.testing.state import (
    CallContext,
    MethodRegistry,
    PortalError,
    PortalState,
    paginate,
)

__all__ = ["find_template", "register_templates", "store_template"]

_PREFIX = "crm.documentgenerator.template."
_REQUIRED = ("name", "numeratorId", "region", "entityTypeId")
_LIST_STAR = (
    "id", "active", "name", "code", "region", "sort", "createTime", "updateTime", "moduleId",
    "numeratorId", "withStamps", "isDeleted",
)  # fmt: skip
_LIST_EXTRA = ("entityTypeId", "users")
#: The ORM entity named in unknown-field errors (by analogy with the documented
#: ``\\Bitrix\\DocumentGenerator\\Model\\Document``).
_ENTITY = "\\Bitrix\\DocumentGenerator\\Model\\Template"


def store_template(
    state: PortalState,
    *,
    name: str,
    file: bytes,
    numerator_id: int,
    entity_type_ids: list[str],
    region: str = "de",
    users: list[str] | None = None,
    hidden: bool = False,
) -> TemplateRecord:
    """Create a template in ``state`` (no checks) and return it."""
    record = TemplateRecord(
        id=state.next_id("template"),
        name=name,
        region=region,
        numerator_id=numerator_id,
        entity_type_ids=entity_type_ids,
        users=users if users is not None else ["UA"],
        file=file,
        placeholders=docx_placeholders(file),
        hidden=hidden,
    )
    state.templates[record.id] = record
    return record


def find_template(ctx: CallContext, value: Any, *, deleted_ok: bool = False) -> TemplateRecord:
    """The template ``value`` names (an id in any form).

    Raises:
        PortalError: ``"100"`` ``...Template constructor must be is public`` when ``value`` is
            missing; ``"0"`` ``Template not found`` when no template (or a deleted one, unless
            ``deleted_ok``) has that id.
    """
    if value in (None, "", 0, "0"):
        raise PortalError(
            "100", "Bitrix\\DocumentGenerator\\Template constructor must be is public"
        )
    record = ctx.state.templates.get(to_int(value) or 0)
    if record is None or (record.is_deleted and not deleted_ok):
        raise PortalError("0", "Template not found")
    return record


def _file(value: Any) -> bytes:
    parts = to_list(value) if isinstance(value, list | dict) else [value]
    content = parts[-1] if parts else None
    if content in (None, ""):
        raise PortalError("0", "Missing file content")
    data = decode_base64(content)
    if data is None or not is_docx(data):
        raise PortalError("0", "Could not save file")
    return data


def _apply(ctx: CallContext, record: TemplateRecord, fields: dict[str, Any]) -> None:
    """Check and copy ``fields`` (any subset of ``add``'s) onto ``record``."""
    empty = [key for key in _REQUIRED if key in fields and not to_list(fields[key])]
    if empty:
        raise PortalError("0", "Empty required fields: " + ", ".join(empty))
    if "file" in fields:
        record.file = _file(fields["file"])
        record.placeholders = docx_placeholders(record.file)
    if "numeratorId" in fields:
        numerator_id = to_int(fields["numeratorId"])
        if numerator_id is None or numerator_id not in ctx.state.numerators:
            raise PortalError("100", "Could not construct parameter {numerator}")
        record.numerator_id = numerator_id
    if "name" in fields:
        record.name = str(fields["name"])
    if "region" in fields:
        record.region = str(fields["region"])
    if "entityTypeId" in fields:
        record.entity_type_ids = [str(code) for code in to_list(fields["entityTypeId"])]
    if "users" in fields:
        record.users = [str(code) for code in to_list(fields["users"])]
    record.active = yes_no(fields.get("active"), record.active)
    record.with_stamps = yes_no(fields.get("withStamps"), record.with_stamps)
    sort = to_int(fields.get("sort"))
    record.sort = record.sort if sort is None else sort
    record.updated = now()


def add(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``template.add``: ``fields`` {name*, file*, numeratorId*, region*, entityTypeId*, ...}."""
    fields = fields_param(params)
    missing = [key for key in _REQUIRED if not to_list(fields.get(key))]
    if missing:
        raise PortalError("0", "Empty required fields: " + ", ".join(missing))
    if not to_list(fields.get("file")):
        raise PortalError("0", "Missing file content")
    draft = TemplateRecord(
        id=0,
        name="",
        region="",
        numerator_id=0,
        entity_type_ids=[],
        users=[f"U{ctx.auth.user_id}"],
        file=b"",
        placeholders=[],
    )
    _apply(ctx, draft, fields)
    if not draft.users:
        # "If empty, the current user (U<id>) is automatically added" (template.add page).
        draft.users = [f"U{ctx.auth.user_id}"]
    draft.id = ctx.state.next_id("template")
    draft.created = draft.updated
    ctx.state.templates[draft.id] = draft
    return {"template": template_wire(ctx, draft, "add")}


def update(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``template.update``: ``id``, ``fields`` (the keys of ``add``, each optional)."""
    record = find_template(ctx, params.get("id"))
    fields = fields_param(params)
    draft = attrs.evolve(record)  # checked in full before anything changes
    _apply(ctx, draft, fields)
    ctx.state.templates[record.id] = draft
    return {"template": template_wire(ctx, draft, "add")}


def get(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``template.get``: ``id``."""
    return {"template": template_wire(ctx, find_template(ctx, params.get("id")), "get")}


def delete(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``template.delete``: ``id``; marks the template deleted and answers ``null``."""
    record = find_template(ctx, params.get("id"))
    record.is_deleted = True
    record.updated = now()
    return None


def _row_fields(record: TemplateRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "active": record.active,
        "name": record.name,
        "code": record.code,
        "region": record.region,
        "sort": record.sort,
        "createTime": record.created.isoformat(),
        "updateTime": record.updated.isoformat(),
        "moduleId": "crm",
        "numeratorId": record.numerator_id,
        "withStamps": record.with_stamps,
        "isDeleted": "Y" if record.is_deleted else "N",
        "entityTypeId": list(record.entity_type_ids),
        "users": list(record.users),
    }


def list_(ctx: CallContext, params: dict[str, Any]) -> tuple[Any, int, int | None]:
    """``template.list``: ``select``, ``filter`` (default ``isDeleted=N``), ``order``, ``start``."""
    known = (*_LIST_STAR, *_LIST_EXTRA)
    conditions = parse_filter(params, known, _ENTITY)
    if not any(c.field == "isDeleted" for c in conditions):
        conditions += parse_filter({"filter": {"isDeleted": "N"}}, known, _ENTITY)
    keys = select_keys(params, _LIST_STAR, _LIST_EXTRA, _ENTITY)
    visible = [r for _, r in sorted(ctx.state.templates.items()) if not r.hidden]
    rows = filter_rows(visible, conditions, _row_fields)
    rows = sort_rows(rows, params, known, _ENTITY, _row_fields, {"id": "asc"})
    page, total, following = paginate(rows, params.get("start", 0))
    templates: dict[str, Any] = {}
    for record in page:
        wire = template_wire(ctx, record, "list")
        templates[str(record.id)] = {
            key: wire[key] for key in (*keys, "download", "downloadMachine")
        }
    # Keyed by id, an object; with no row PHP's json_encode writes the empty array as [].
    return {"templates": templates or []}, total, following


def getfields(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``template.getfields``: ``id``, ``entityTypeId``, ``entityId``, ``values``."""
    record = find_template(ctx, params.get("id"), deleted_ok=True)
    if record.is_deleted:
        raise PortalError("", "Cannot get fields from deleted template")
    if to_int(params.get("entityTypeId")) is None:
        raise PortalError("0", "No provider for entityTypeId")
    values = fields_param(params, "values") if params.get("values") not in (None, "") else {}
    number = next_number(ctx.state, record.numerator_id, peek=True)
    return {"templateFields": describe_fields(record, number, values)}


def register_templates(registry: MethodRegistry) -> None:
    """Register the six template methods."""
    registry.register(_PREFIX + "add", add)
    registry.register(_PREFIX + "update", update)
    registry.register(_PREFIX + "get", get)
    registry.register(_PREFIX + "delete", delete)
    registry.register(_PREFIX + "list", list_, paged=True)
    registry.register(_PREFIX + "getfields", getfields)
