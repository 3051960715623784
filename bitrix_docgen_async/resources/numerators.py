"""``client.numerators``: ``crm.documentgenerator.numerator.*``."""

from __future__ import annotations

from typing import Any

from bitrix_docgen_async.core import validate as check
from bitrix_docgen_async.core.convert import structure
from bitrix_docgen_async.models import Numerator, Page, SequentSettings
from bitrix_docgen_async.resources.base import PREFIX, Resource, unwrap
from bitrix_docgen_async.resources.listing import Listing
from bitrix_docgen_async.session import CommandResult

__all__ = ["Numerators"]

_GENERATOR = "Bitrix_Main_Numerator_Generator_SequentNumberGenerator"
_PERIODS = frozenset({"", "day", "month", "year"})


def _settings(settings: SequentSettings | None) -> dict[str, Any]:
    """The wire form of the sequential generator's settings, checked; {} when none are given."""
    if settings is None:
        return {}
    if not isinstance(settings, SequentSettings):
        raise TypeError(f"settings must be a SequentSettings, got {type(settings).__name__}")
    for name in ("start", "step", "length"):
        value = getattr(settings, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"settings.{name} must be an int")
    if settings.step is not None and settings.step <= 0:
        raise ValueError("settings.step must be > 0")
    if settings.length is not None and settings.length < 0:
        raise ValueError("settings.length must be >= 0")
    if settings.periodic_by is not None and settings.periodic_by not in _PERIODS:
        raise ValueError(f"settings.periodic_by must be one of {sorted(_PERIODS)}")
    wire = {
        "start": settings.start,
        "step": settings.step,
        "length": settings.length,
        "padString": settings.pad_string,
        "periodicBy": settings.periodic_by,
        "timezone": settings.timezone,
        "isDirectNumeration": settings.is_direct_numeration,
    }
    chosen = {key: value for key, value in wire.items() if value is not None}
    return {_GENERATOR: chosen} if chosen else {}


class Numerators(Resource):
    """Document numbering: one counter per numerator, shared by its templates."""

    async def add(
        self, name: str, template: str = "{NUMBER}", *, settings: SequentSettings | None = None
    ) -> Numerator:
        """Create a numerator (``crm.documentgenerator.numerator.add``).

        Args:
            name: shown in the interface.
            template: the number's pattern, e.g. ``"INV-{NUMBER}"``.
            settings: the sequential generator's settings (start, step, length, padding,
                period); the portal's defaults for what is left out.
        """
        fields: dict[str, Any] = {
            "name": check.text("name", name),
            "template": check.text("template", template),
        }
        if wire := _settings(settings):
            fields["settings"] = wire
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
        settings: SequentSettings | None = None,
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
        if wire := _settings(settings):
            fields["settings"] = wire
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
