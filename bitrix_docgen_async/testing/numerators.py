"""``crm.documentgenerator.numerator.*`` handlers with the documented shapes and quirks.

docs/portal.md#document-generator, docs/portal.md#wire-quirks,
docs/portal.md#document-generator-errors and the docs' fixtures: ``add`` answers ``{"numerator":
{...}}`` with
an *int* id; ``get`` the same wrapper with a *string* id; ``update`` the numerator object itself,
not wrapped; ``list`` ``{"numerators": [...]}`` (rows without ``code``), 50 per page; ``delete``
``null``. Only numerators created through REST may be updated or deleted. ``delete`` without
``id`` answers ``"100"`` ``Bitrix\\Main\\Numerator\\Numerator constructor must be is public``, as
its docs page shows (docs/portal.md#wire-quirks).

:func:`next_number` hands out document numbers: one counter per numerator, shared by every
template that uses it (docs/portal.md#document-generator), honouring
``start``/``step``/``length``/``padString``
and the text around ``{NUMBER}`` (``{YEAR}``, ``{MONTH}``, ``{DAY}`` too; ``periodicBy`` resets
are not modelled).
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from bitrix_docgen_async.testing.params import fields_param
from bitrix_docgen_async.testing.state import (
    CallContext,
    MethodRegistry,
    PortalError,
    PortalState,
    paginate,
)

__all__ = [
    "GENERATOR",
    "default_settings",
    "next_number",
    "register_numerators",
    "store_numerator",
]

#: The settings key of the sequential number generator.
GENERATOR = "Bitrix_Main_Numerator_Generator_SequentNumberGenerator"
_PREFIX = "crm.documentgenerator.numerator."
_INT_SETTINGS = ("start", "step", "length")


def default_settings() -> dict[str, Any]:
    """The generator settings a numerator gets when none are given (as in the docs' examples)."""
    return {
        GENERATOR: {
            "start": 1,
            "step": 1,
            "length": 0,
            "padString": "0",
            "periodicBy": None,
            "timezone": None,
            "isDirectNumeration": False,
        }
    }


def _merge_settings(current: dict[str, Any], given: Any) -> dict[str, Any]:
    merged = copy.deepcopy(current)
    if not isinstance(given, dict):
        return merged
    incoming = given.get(GENERATOR)
    if not isinstance(incoming, dict):
        return merged
    target = merged[GENERATOR]
    for key, value in incoming.items():
        if key in _INT_SETTINGS and isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        elif key == "isDirectNumeration" and isinstance(value, str):
            value = value.lower() in ("1", "y", "true")
        elif key in ("periodicBy", "timezone") and value == "":
            value = None
        target[key] = value
    return merged


def store_numerator(
    state: PortalState, name: str, template: str, settings: Any = None, *, by_rest: bool
) -> int:
    """Create a numerator in ``state`` and return its id."""
    numerator_id = state.next_id("numerator")
    state.numerators[numerator_id] = {
        "id": str(numerator_id),
        "name": name,
        "template": template,
        "code": None,
        "settings": _merge_settings(default_settings(), settings),
    }
    if by_rest:
        state.rest_numerators.add(numerator_id)
    return numerator_id


def _setting(settings: dict[str, Any], key: str, default: int) -> int:
    try:
        return int(settings.get(key, default))
    except (TypeError, ValueError):
        return default


def next_number(state: PortalState, numerator_id: int, *, peek: bool = False) -> str:
    """The next document number of a numerator, e.g. ``"INV-0100"``.

    Args:
        state: the portal state holding the numerator and its counter.
        numerator_id: the numerator.
        peek: only say what the next number would be; the counter does not move.

    Raises:
        PortalError: ``"0"`` ``Error getting next number`` when the numerator is gone.
    """
    row = state.numerators.get(numerator_id)
    if row is None:
        raise PortalError("0", "Error getting next number")
    settings = row["settings"].get(GENERATOR) or {}
    last = state.numbering.get(numerator_id)
    value = _setting(settings, "start", 1) if last is None else last + _setting(settings, "step", 1)
    if not peek:
        state.numbering[numerator_id] = value
    text = str(value)
    length = _setting(settings, "length", 0)
    pad = str(settings.get("padString") or "0")[:1] or "0"
    if length > len(text):
        text = pad * (length - len(text)) + text
    today = date.today()
    return (
        str(row["template"])
        .replace("{NUMBER}", text)
        .replace("{YEAR}", f"{today.year:04d}")
        .replace("{MONTH}", f"{today.month:02d}")
        .replace("{DAY}", f"{today.day:02d}")
    )


def _numerator(ctx: CallContext, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    try:
        numerator_id = int(str(params.get("id", "")).strip())
    except ValueError:
        numerator_id = 0
    row = ctx.state.numerators.get(numerator_id)
    if row is None:
        raise PortalError("100", "Could not construct parameter {numerator}")
    return numerator_id, row


def _writable(ctx: CallContext, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    numerator_id, row = _numerator(ctx, params)
    if numerator_id not in ctx.state.rest_numerators:
        raise PortalError("DOCGEN_ACCESS_ERROR", "Access denied")
    return numerator_id, row


def _ordered(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: copy.deepcopy(row[key]) for key in keys}


def add(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``numerator.add``: ``fields`` {name*, template*, settings}."""
    fields = fields_param(params)
    missing = [key for key in ("name", "template") if fields.get(key) in (None, "")]
    if missing:
        raise PortalError("0", "Empty required fields: " + ", ".join(missing))
    numerator_id = store_numerator(
        ctx.state,
        str(fields["name"]),
        str(fields["template"]),
        fields.get("settings"),
        by_rest=True,
    )
    row = _ordered(ctx.state.numerators[numerator_id], "name", "template", "id", "code", "settings")
    row["id"] = numerator_id
    return {"numerator": row}


def get(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``numerator.get``: ``id``."""
    _, row = _numerator(ctx, params)
    return {"numerator": _ordered(row, "id", "name", "template", "code", "settings")}


def update(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``numerator.update``: ``id``, ``fields``; answers the numerator itself, not wrapped."""
    _, row = _writable(ctx, params)
    fields = fields_param(params)
    for key in ("name", "template"):
        if fields.get(key) not in (None, ""):
            row[key] = str(fields[key])
    if "settings" in fields:
        row["settings"] = _merge_settings(row["settings"], fields["settings"])
    return _ordered(row, "name", "template", "id", "code", "settings")


def delete(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``numerator.delete``: ``id``; answers ``null``."""
    if params.get("id") in (None, ""):
        # The answer the docs' numerator.delete page shows for a call without ``id``
        # (docs/portal.md#wire-quirks); get/update keep the unknown-numerator error, undocumented.
        raise PortalError("100", "Bitrix\\Main\\Numerator\\Numerator constructor must be is public")
    numerator_id, _ = _writable(ctx, params)
    del ctx.state.numerators[numerator_id]
    ctx.state.rest_numerators.discard(numerator_id)
    return None


def list_(ctx: CallContext, params: dict[str, Any]) -> tuple[Any, int, int | None]:
    """``numerator.list``: only ``start``; rows carry no ``code``."""
    rows = [
        _ordered(row, "id", "name", "template", "settings")
        for _, row in sorted(ctx.state.numerators.items())
    ]
    page, total, following = paginate(rows, params.get("start", 0))
    return {"numerators": page}, total, following


def register_numerators(registry: MethodRegistry) -> None:
    """Register the five numerator methods."""
    registry.register(_PREFIX + "add", add)
    registry.register(_PREFIX + "get", get)
    registry.register(_PREFIX + "update", update)
    registry.register(_PREFIX + "delete", delete)
    registry.register(_PREFIX + "list", list_, paged=True)
