"""Reading REST parameters the lenient way PHP does.

A parameter may arrive from JSON (ints, lists, booleans) or from a query string, a form or a
batch command (every scalar a string, every array a dict keyed ``"0"``, ``"1"``, ...). These
helpers accept both.
"""

from __future__ import annotations

from typing import Any

from bitrix_docgen_async.testing.batch import parse_flag
from bitrix_docgen_async.testing.state import PortalError

__all__ = ["fields_param", "to_flag", "to_int", "to_list", "yes_no"]


def fields_param(params: dict[str, Any], name: str = "fields") -> dict[str, Any]:
    """The ``fields`` object of a call, with the documented errors when it is not one.

    Raises:
        PortalError: ``"100"`` ``Could not find value for parameter {fields}`` when absent, or
            ``Invalid value {...} to match with parameter {fields}...`` when not an array.
    """
    if name not in params:
        raise PortalError("100", f"Could not find value for parameter {{{name}}}")
    fields = params[name]
    if isinstance(fields, list):  # a PHP array all the same
        return {str(index): value for index, value in enumerate(fields)}
    if not isinstance(fields, dict):
        shown = "1" if fields is True else "" if fields is None or fields is False else fields
        raise PortalError(
            "100",
            f"Invalid value {{{shown}}} to match with parameter {{{name}}}. "
            "Should be value of type array.",
        )
    return fields


def to_int(value: Any) -> int | None:
    """An integer from ``7``, ``"7"``, ``" 7 "`` or ``7.0``; ``None`` for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    return None


def to_list(value: Any) -> list[Any]:
    """A list from a JSON list, a PHP array (dict), a lone scalar or nothing (``[]``)."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def to_flag(value: Any, default: bool) -> bool:
    """A boolean from ``1``/``0``, ``"Y"``/``"N"``, ``true``/``false``; ``default`` if absent."""
    if value is None or value == "":
        return default
    return parse_flag(value)


def yes_no(value: Any, default: str) -> str:
    """``"Y"`` or ``"N"`` from any flag form; ``default`` if absent."""
    if value is None or value == "":
        return default
    return "Y" if parse_flag(value) else "N"
