"""``check_values=True``: placeholder values checked against the template's fields.

The portal accepts a value whose name no field has and renders the document without it, so a
misspelled placeholder goes unnoticed until someone reads the document. With ``check_values``
the names are checked against ``crm.documentgenerator.template.getfields`` before any
``document.add`` is sent; the fields are read once per template and entity type and kept for the
client's lifetime.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from bitrix_docgen_async.errors import UnknownFieldsError

if TYPE_CHECKING:
    from bitrix_docgen_async.client import DocgenClient

__all__ = ["FieldChecker"]


class FieldChecker:
    """The field names of each template, read once per client, and the check of ``values``."""

    def __init__(self, client: DocgenClient) -> None:
        self._client = client
        self._fields: dict[tuple[int, int], asyncio.Future[frozenset[str]]] = {}

    async def names(self, template_id: int, entity_type_id: int) -> frozenset[str]:
        """The template's field codes (one ``template.getfields`` per template and type)."""
        key = (int(template_id), int(entity_type_id))
        known = self._fields.get(key)
        if known is None:
            # One read however many calls ask at once; a failed read is not kept.
            known = asyncio.get_running_loop().create_future()
            self._fields[key] = known
            try:
                fields = await self._client.templates.get_fields(template_id, entity_type_id)
            except BaseException as exc:
                del self._fields[key]
                known.set_exception(exc)
                known.exception()  # retrieved: the waiters (if any) re-raise it
                raise
            known.set_result(frozenset(fields))
        return await asyncio.shield(known)

    async def check(
        self, template_id: int, entity_type_id: int, values: Mapping[str, Any] | None
    ) -> None:
        """Raise :class:`UnknownFieldsError` when ``values`` name a field the template lacks."""
        if not values:
            return
        known = await self.names(template_id, entity_type_id)
        unknown = sorted(str(name) for name in values if str(name) not in known)
        if unknown:
            suggestions = {
                name: difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
                for name in unknown
            }
            raise UnknownFieldsError(template_id, unknown, suggestions)

    def checked(
        self,
        template_id: int,
        entity_type_id: int,
        produce: Callable[[int], Mapping[str, Any] | Awaitable[Mapping[str, Any]]],
    ) -> Callable[[int], Awaitable[Mapping[str, Any]]]:
        """A ``values`` function whose every result is checked before it is used."""

        async def values(entity_id: int) -> Mapping[str, Any]:
            produced = produce(entity_id)
            if isinstance(produced, Awaitable):
                produced = await produced
            await self.check(template_id, entity_type_id, produced)
            return produced

        return values
