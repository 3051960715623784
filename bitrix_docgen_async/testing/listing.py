"""``filter``, ``order`` and ``select`` of the docgen list methods (docs/portal.md#pagination).

A filter key is a field name with an optional operator prefix: ``>=``, ``>``, ``<=``, ``<``,
``@`` (in a list), ``!@``, ``=``, ``!=``/``!`` (not equal), ``%`` (contains), ``!%``. A plain
value holding ``%`` is a ``LIKE`` pattern (``"2%"``, ``"%_US"``); a list value means ``@``.
Values compare as numbers when both sides are integers, otherwise as case-insensitive text. A
list-valued field (a template's ``entityTypeId``) matches when any element does. Field names
match without regard to case or underscores (``entityTypeId`` = ``ENTITY_TYPE_ID``); an unknown
one is refused the way Bitrix's ORM refuses it.

``strict=True`` (``document.list``) keeps to what the docs document for it: a key is one of the
nine prefixes ``>=``, ``>``, ``<=``, ``<``, ``@``, ``!@``, ``=``, ``!=``, ``!`` (or none) and a
field spelled exactly as given (camelCase); ``%`` and other spellings are unknown fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from bitrix_docgen_async.testing.params import fields_param, to_int, to_list
from bitrix_docgen_async.testing.state import PortalError

__all__ = [
    "DOCUMENTED_PREFIXES",
    "Condition",
    "filter_rows",
    "parse_filter",
    "select_keys",
    "sort_rows",
    "unknown_field",
]

T = TypeVar("T")

_PREFIXES = ("!@", "!%", ">=", "<=", "!=", "@", ">", "<", "=", "!", "%")
#: The prefixes the ``document.list`` page documents (docs/portal.md#pagination), longest first.
DOCUMENTED_PREFIXES = ("!@", ">=", "<=", "!=", "@", ">", "<", "=", "!")
_NEGATED = {"!": "", "!=": "", "!@": "@", "!%": "%"}


@attrs.frozen
class Condition:
    """One filter entry: ``field`` (canonical name), ``op`` (prefix, ``""`` for none), value."""

    field: str
    op: str
    value: Any


def _key(name: str) -> str:
    return name.replace("_", "").strip().lower()


def unknown_field(name: str, entity: str) -> PortalError:
    """The ORM's error for a field it does not know (``"100"``).

    ``entity`` is the ORM entity as the message names it: the docs' ``document.list`` page
    shows ``Unknown field definition ENTITY_TYPE_ID (ENTITY_TYPE_ID) for
    \\Bitrix\\DocumentGenerator\\Model\\Document Entity``.
    """
    upper = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()
    return PortalError("100", f"Unknown field definition {upper} ({upper}) for {entity} Entity")


def _canonical(name: str, known: Iterable[str], entity: str, *, strict: bool = False) -> str:
    wanted = name if strict else _key(name)
    for field in known:
        if (field if strict else _key(field)) == wanted:
            return field
    raise unknown_field(name, entity)


def parse_filter(
    params: dict[str, Any], known: Iterable[str], entity: str, *, strict: bool = False
) -> list[Condition]:
    """The conditions of ``params["filter"]`` (none when it is absent or empty).

    Args:
        params: the call's parameters.
        known: the fields a filter may name.
        entity: the ORM entity name for the unknown-field error.
        strict: only the documented prefixes and exact field names (see the module docstring).

    Raises:
        PortalError: ``filter`` is not an array, or names a field not in ``known``.
    """
    if params.get("filter") in (None, "", []):
        return []
    prefixes = DOCUMENTED_PREFIXES if strict else _PREFIXES
    conditions = []
    for key, value in fields_param(params, "filter").items():
        op = next((prefix for prefix in prefixes if key.startswith(prefix)), "")
        field = _canonical(key[len(op) :], known, entity, strict=strict)
        conditions.append(Condition(field, op, value))
    return conditions


def _number(value: Any) -> int | None:
    return to_int(value) if isinstance(value, int | str | float) else None


def _equal(actual: Any, expected: Any) -> bool:
    left, right = _number(actual), _number(expected)
    if left is not None and right is not None:
        return left == right
    return str(actual).casefold() == str("" if expected is None else expected).casefold()


def _like(actual: Any, pattern: str) -> bool:
    regex = "".join(
        ".*" if char == "%" else "." if char == "_" else re.escape(char) for char in pattern
    )
    return re.fullmatch(regex, str(actual), re.IGNORECASE | re.DOTALL) is not None


def _sort_key(value: Any) -> tuple[int, Any]:
    number = _number(value)
    if number is not None:
        return (0, number)
    return (1, "" if value is None else str(value).casefold())


def _holds(actual: Any, op: str, expected: Any) -> bool:
    """The condition for one scalar value, for a non-negated ``op``."""
    if op in ("", "=") and isinstance(expected, list | dict):
        op = "@"
    if op == "@":
        return any(_equal(actual, option) for option in to_list(expected))
    if op == "%":
        return str(expected).casefold() in str(actual).casefold()
    if op in ("", "="):
        if isinstance(expected, str) and "%" in expected:
            return _like(actual, expected)
        return _equal(actual, expected)
    left, right = _sort_key(actual), _sort_key(expected)
    if left[0] != right[0]:
        left, right = (1, str(actual).casefold()), (1, str(expected).casefold())
    return {">=": left >= right, ">": left > right, "<=": left <= right, "<": left < right}[op]


def _matches(row: Mapping[str, Any], condition: Condition) -> bool:
    actual = row.get(condition.field)
    values = actual if isinstance(actual, list) else [actual]
    if condition.op in _NEGATED:
        op = _NEGATED[condition.op]
        return not any(_holds(value, op, condition.value) for value in values)
    return any(_holds(value, condition.op, condition.value) for value in values)


def filter_rows(
    items: Iterable[T], conditions: Sequence[Condition], fields: Callable[[T], Mapping[str, Any]]
) -> list[T]:
    """The items whose ``fields(item)`` satisfy every condition."""
    return [item for item in items if all(_matches(fields(item), c) for c in conditions)]


def sort_rows(
    items: list[T],
    params: dict[str, Any],
    known: Iterable[str],
    entity: str,
    fields: Callable[[T], Mapping[str, Any]],
    default: Mapping[str, str],
) -> list[T]:
    """``items`` sorted by ``params["order"]`` (``{"id": "desc"}``), else by ``default``.

    Raises:
        PortalError: ``order`` is not an array, or names a field not in ``known``.
    """
    order: Mapping[str, Any] = default
    if params.get("order") not in (None, "", []):
        order = fields_param(params, "order")
    keys = [(_canonical(name, known, entity), str(way)) for name, way in order.items()]
    for field, way in reversed(keys):
        descending = way.strip().lower() == "desc"
        items = sorted(
            items, key=lambda item: _sort_key(fields(item).get(field)), reverse=descending
        )
    return items


def select_keys(
    params: dict[str, Any],
    star: Sequence[str],
    extra: Sequence[str],
    entity: str,
    refused: Sequence[str] = (),
) -> list[str]:
    """The output keys ``params["select"]`` asks for; ``*`` means ``star`` (also the default).

    Args:
        params: the call's parameters.
        star: the keys ``*`` stands for, in output order.
        extra: further keys that may be selected by name only.
        entity: the ORM entity name for the unknown-field error.
        refused: keys that ``*`` includes but that may not be selected by name.

    Raises:
        PortalError: a selected name that is neither in ``star`` nor in ``extra``, or is in
            ``refused``.
    """
    wanted = [str(name) for name in to_list(params.get("select"))] or ["*"]
    chosen: list[str] = []
    for name in wanted:
        if _key(name) in {_key(key) for key in refused}:
            raise unknown_field(name.strip(), entity)
        names = list(star) if name.strip() == "*" else [_canonical(name, [*star, *extra], entity)]
        chosen.extend(key for key in names if key not in chosen)
    return [key for key in [*star, *extra] if key in chosen]
