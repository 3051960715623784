"""``client.templates``: ``crm.documentgenerator.template.*``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from bitrix_docgen_async.core import validate as check
from bitrix_docgen_async.core.convert import structure_fields, structure_templates
from bitrix_docgen_async.models import FieldDescription, Page, Template
from bitrix_docgen_async.resources.base import PREFIX, Resource, unwrap
from bitrix_docgen_async.resources.listing import Listing
from bitrix_docgen_async.session import CommandResult

__all__ = ["Templates"]

FileLike = bytes | str | os.PathLike[str]


def _yn(name: str, value: bool) -> str:
    return "Y" if check.flag(name, value) else "N"


def _users(users: Iterable[str]) -> list[str]:
    if isinstance(users, str):
        raise TypeError("users must be a list of access codes such as ['UA'] or ['U1']")
    checked = [check.text("users[]", u) for u in users]
    if not checked:
        raise ValueError("users must not be empty (leave it out for the current user)")
    return checked


class Templates(Resource):
    """.docx templates bound to CRM entity types."""

    async def add(
        self,
        name: str,
        file: FileLike,
        *,
        numerator_id: int,
        region: str,
        entity_type_ids: Iterable[int],
        users: Iterable[str] | None = None,
        active: bool = True,
        with_stamps: bool = False,
        sort: int | None = None,
        file_name: str | None = None,
    ) -> Template:
        """Upload a template (``crm.documentgenerator.template.add``).

        Args:
            name: the template's name.
            file: the .docx as bytes or a path; sent as ``["name.docx", "<base64>"]``.
            numerator_id: the numerator that numbers its documents.
            region: a region code such as ``"us"``, ``"de"`` or a custom region id.
            entity_type_ids: the CRM entity types it serves (``EntityType`` or ints).
            users: access codes of who may use it (default: the current user).
            active, with_stamps, sort: as in the interface.
            file_name: the name sent with the file (default: the path's name or
                ``template.docx``).
        """
        default_name, content = check.file_payload("file", file, default_name="template.docx")
        fields: dict[str, Any] = {
            "name": check.text("name", name),
            "file": [check.text("file_name", file_name or default_name), content],
            "numeratorId": check.positive_id("numerator_id", numerator_id),
            "region": check.text("region", region),
            "entityTypeId": check.entity_types("entity_type_ids", entity_type_ids),
            "active": _yn("active", active),
            "withStamps": _yn("with_stamps", with_stamps),
        }
        if users is not None:
            fields["users"] = _users(users)
        if sort is not None:
            fields["sort"] = check.positive_id("sort", sort)
        return await self._one(PREFIX + "template.add", {"fields": fields}, "template", Template)

    async def get(self, template_id: int) -> Template:
        """One template (``crm.documentgenerator.template.get``)."""
        params = {"id": check.positive_id("template_id", template_id)}
        return await self._one(PREFIX + "template.get", params, "template", Template)

    async def update(
        self,
        template_id: int,
        *,
        name: str | None = None,
        file: FileLike | None = None,
        numerator_id: int | None = None,
        region: str | None = None,
        entity_type_ids: Iterable[int] | None = None,
        users: Iterable[str] | None = None,
        active: bool | None = None,
        with_stamps: bool | None = None,
        sort: int | None = None,
    ) -> Template:
        """Change a template (``crm.documentgenerator.template.update``); give what changes."""
        fields: dict[str, Any] = {}
        if name is not None:
            fields["name"] = check.text("name", name)
        if file is not None:
            fields["file"] = list(check.file_payload("file", file, default_name="template.docx"))
        if numerator_id is not None:
            fields["numeratorId"] = check.positive_id("numerator_id", numerator_id)
        if region is not None:
            fields["region"] = check.text("region", region)
        if entity_type_ids is not None:
            fields["entityTypeId"] = check.entity_types("entity_type_ids", entity_type_ids)
        if users is not None:
            fields["users"] = _users(users)
        if active is not None:
            fields["active"] = _yn("active", active)
        if with_stamps is not None:
            fields["withStamps"] = _yn("with_stamps", with_stamps)
        if sort is not None:
            fields["sort"] = check.positive_id("sort", sort)
        if not fields:
            raise ValueError("update needs at least one field to change")
        params = {"id": check.positive_id("template_id", template_id), "fields": fields}
        return await self._one(PREFIX + "template.update", params, "template", Template)

    async def delete(self, template_id: int) -> None:
        """Delete a template (``crm.documentgenerator.template.delete``)."""
        params = {"id": check.positive_id("template_id", template_id)}
        await self._send(PREFIX + "template.delete", params)

    def list(
        self,
        *,
        filter: Mapping[str, Any] | None = None,
        order: Mapping[str, str] | None = None,
        select: list[str] | None = None,
    ) -> Listing[Template]:
        """Templates, 50 per page, in the portal's order (``...template.list``).

        The portal hides deleted templates unless the filter says otherwise.
        """
        params = check.list_params(filter, order, select)
        return Listing(self._client.call_full, PREFIX + "template.list", params, _template_page)

    async def get_fields(
        self,
        template_id: int,
        entity_type_id: int,
        entity_id: int | None = None,
        *,
        values: Mapping[str, Any] | None = None,
    ) -> dict[str, FieldDescription]:
        """A template's fields for an entity (``crm.documentgenerator.template.getfields``)."""
        params: dict[str, Any] = {
            "id": check.positive_id("template_id", template_id),
            "entityTypeId": check.entity_type("entity_type_id", entity_type_id),
        }
        if entity_id is not None:
            params["entityId"] = check.positive_id("entity_id", entity_id)
        if values:
            params["values"] = check.optional_mapping("values", values)
        reply = await self._send(PREFIX + "template.getfields", params)
        return structure_fields(unwrap(reply.result, "templateFields", "template.getfields"))


def _template_page(reply: CommandResult) -> Page[Template]:
    items = tuple(structure_templates(unwrap(reply.result, "templates", "template.list")))
    return Page(items=items, total=reply.total, next=reply.next)
