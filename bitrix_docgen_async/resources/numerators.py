"""``client.numerators``: ``crm.documentgenerator.numerator.*``."""

from __future__ import annotations

from typing import Any

from bitrix_docgen_async.core import validate as check
from bitrix_docgen_async.core.convert import structure
from bitrix_docgen_async.models import Numerator, Page
from bitrix_docgen_async.resources.base import PREFIX, Resource, unwrap
from bitrix_docgen_async.resources.listing import Listing
from bitrix_docgen_async.session import CommandResult

__all__ = ["Numerators"]

_GENERATOR = "Bitrix_Main_Numerator_Generator_SequentNumberGenerator"
_PERIODS = frozenset({"", "day", "month", "year"})


def _settings(
    start: int | None,
    step: int | None,
    length: int | None,
    pad_string: str | None,
    periodic_by: str | None,
    timezone: str | None,
    is_direct_numeration: bool | None,
) -> dict[str, Any]:
    raw = {
        "start": start,
        "step": step,
        "length": length,
        "padString": pad_string,
        "periodicBy": periodic_by,
        "timezone": timezone,
        "isDirectNumeration": is_direct_numeration,
    }
    for name in ("start", "step", "length"):
        value = raw[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{name} must be an int")
    if step is not None and step <= 0:
        raise ValueError("step must be > 0")
    if length is not None and length < 0:
        raise ValueError("length must be >= 0")
    if periodic_by is not None and periodic_by not in _PERIODS:
        raise ValueError(f"periodic_by must be one of {sorted(_PERIODS)}")
    chosen = {k: v for k, v in raw.items() if v is not None}
    return {_GENERATOR: chosen} if chosen else {}


class Numerators(Resource):
    """Document numbering: one counter per numerator, shared by its templates."""

    async def add(
        self,
        name: str,
        template: str = "{NUMBER}",
        *,
        start: int | None = None,
        step: int | None = None,
        length: int | None = None,
        pad_string: str | None = None,
        periodic_by: str | None = None,
        timezone: str | None = None,
        is_direct_numeration: bool | None = None,
    ) -> Numerator:
        """Create a numerator (``crm.documentgenerator.numerator.add``).

        Args:
            name: shown in the interface.
            template: the number's pattern, e.g. ``"INV-{NUMBER}"``.
            start, step, length, pad_string, periodic_by, timezone, is_direct_numeration:
                the sequential generator's settings (``periodic_by``: "", day, month, year).
        """
        fields: dict[str, Any] = {"name": check.text("name", name)}
        fields["template"] = check.text("template", template)
        settings = _settings(
            start, step, length, pad_string, periodic_by, timezone, is_direct_numeration
        )
        if settings:
            fields["settings"] = settings
        return await self._one(PREFIX + "numerator.add", {"fields": fields}, "numerator", Numerator)

    async def get(self, numerator_id: int) -> Numerator:
        """One numerator (``crm.documentgenerator.numerator.get``)."""
        params = {"id": check.positive_id("numerator_id", numerator_id)}
        return await self._one(PREFIX + "numerator.get", params, "numerator", Numerator)

    async def update(
        self,
        numerator_id: int,
        *,
        name: str | None = None,
        template: str | None = None,
        start: int | None = None,
        step: int | None = None,
        length: int | None = None,
        pad_string: str | None = None,
        periodic_by: str | None = None,
        timezone: str | None = None,
        is_direct_numeration: bool | None = None,
    ) -> Numerator:
        """Change a numerator made through REST (``crm.documentgenerator.numerator.update``).

        Only numerators created through REST can be changed; others give
        :class:`AccessDeniedError`.
        """
        fields: dict[str, Any] = {}
        if name is not None:
            fields["name"] = check.text("name", name)
        if template is not None:
            fields["template"] = check.text("template", template)
        settings = _settings(
            start, step, length, pad_string, periodic_by, timezone, is_direct_numeration
        )
        if settings:
            fields["settings"] = settings
        if not fields:
            raise ValueError("update needs at least one field to change")
        params = {"id": check.positive_id("numerator_id", numerator_id), "fields": fields}
        reply = await self._send(PREFIX + "numerator.update", params)
        # The docs show update's result unwrapped (the numerator itself); accept both.
        result = reply.result
        if isinstance(result, dict) and "numerator" in result:
            result = result["numerator"]
        return structure(result, Numerator)

    async def delete(self, numerator_id: int) -> None:
        """Delete a numerator made through REST (``crm.documentgenerator.numerator.delete``)."""
        params = {"id": check.positive_id("numerator_id", numerator_id)}
        await self._send(PREFIX + "numerator.delete", params)

    def list(self) -> Listing[Numerator]:
        """Every numerator (``crm.documentgenerator.numerator.list``; it takes only ``start``)."""
        return Listing(self._client.call_full, PREFIX + "numerator.list", {}, _numerator_page)


def _numerator_page(reply: CommandResult) -> Page[Numerator]:
    rows = unwrap(reply.result, "numerators", "numerator.list")
    items = tuple(structure(row, Numerator) for row in (rows or []))
    return Page(items=items, total=reply.total, next=reply.next)
