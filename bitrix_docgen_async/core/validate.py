"""Argument checks made before anything is sent, each naming the argument it rejects.

A call that the portal would refuse anyway costs a request token and, for writes, operating
budget; worse, the docgen methods answer many mistakes with codes like ``"0"`` or ``"100"`` and
a PHP message. Catching them here gives the user a clear ``ValueError``/``TypeError`` instead.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "KNOWN_ENTITY_TYPES",
    "entity_type",
    "entity_types",
    "file_payload",
    "flag",
    "list_params",
    "optional_mapping",
    "order",
    "positive_id",
    "select",
    "text",
]

#: CRM entity type ids the document generator serves (docs/portal.md#document-generator): lead,
#: deal, contact, company, old invoice, quote, order, smart invoice.
KNOWN_ENTITY_TYPES = frozenset({1, 2, 3, 4, 5, 7, 14, 31})
#: Smart processes get type ids from 128 up (docs/portal.md#document-generator shows 177).
FIRST_SMART_PROCESS = 128


def positive_id(name: str, value: object) -> int:
    """An object id: an int > 0 (``bool`` is not an id)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def entity_type(name: str, value: object) -> int:
    """A CRM entity type: an ``EntityType``, a known id, or a smart-process type id (>= 128)."""
    type_id = positive_id(name, value)
    if type_id not in KNOWN_ENTITY_TYPES and type_id < FIRST_SMART_PROCESS:
        known = ", ".join(str(t) for t in sorted(KNOWN_ENTITY_TYPES))
        raise ValueError(
            f"{name} must be one of {known} or a smart-process type id >= "
            f"{FIRST_SMART_PROCESS}, got {type_id}"
        )
    return int(type_id)


def entity_types(name: str, values: object) -> list[int]:
    """A non-empty collection of entity types (a template's bindings)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list of entity types")
    checked = [entity_type(f"{name}[{i}]", v) for i, v in enumerate(values)]
    if not checked:
        raise ValueError(f"{name} must not be empty")
    return checked


def text(name: str, value: object) -> str:
    """A non-empty, non-blank string."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def optional_mapping(name: str, value: object) -> dict[str, Any]:
    """``None`` or a mapping with str keys (document values, filters)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str) or not key:
            raise TypeError(f"{name} keys must be non-empty str, got {key!r}")
    return dict(value)


def file_payload(name: str, value: object, *, default_name: str) -> tuple[str, str]:
    """File content given as bytes or a path: ``(file name, base64 without line breaks)``.

    The portal fails with "Could not save file" on a ``data:`` prefix or line breaks, so the
    encoding is done here, once, the way it expects (docs/portal.md#document-generator).
    """
    if isinstance(value, bytes | bytearray | memoryview):
        data, file_name = bytes(value), default_name
    elif isinstance(value, str | os.PathLike):
        path = Path(value)
        if not path.is_file():
            raise ValueError(f"{name}: no such file: {path}")
        data, file_name = path.read_bytes(), path.name
    else:
        raise TypeError(f"{name} must be bytes or a path, got {type(value).__name__}")
    if not data:
        raise ValueError(f"{name} must not be empty")
    return file_name, base64.b64encode(data).decode("ascii")


def flag(name: str, value: object) -> bool:
    """A real ``bool`` (a stray 0/1 or "N" is more likely a mistake than a choice)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def order(name: str, value: object) -> dict[str, str]:
    """A list order: ``{field: "asc" | "desc"}``."""
    checked = optional_mapping(name, value)
    for field, direction in checked.items():
        if not isinstance(direction, str) or direction.lower() not in ("asc", "desc"):
            raise ValueError(f"{name}[{field!r}] must be 'asc' or 'desc'")
    return {field: str(direction).lower() for field, direction in checked.items()}


def select(name: str, value: object) -> list[str]:
    """A non-empty list of field names."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise TypeError(f"{name} must be a list of field names")
    if not value or not all(isinstance(f, str) and f for f in value):
        raise ValueError(f"{name} must be a non-empty list of field names")
    return list(value)


def list_params(
    filter_: object | None, order_: object | None, select_: object | None
) -> dict[str, Any]:
    """``filter``/``order``/``select`` of a docgen list, checked; empty ones left out."""
    params: dict[str, Any] = {}
    if filter_:
        params["filter"] = optional_mapping("filter", filter_)
    if order_:
        params["order"] = order("order", order_)
    if select_ is not None:
        params["select"] = select("select", select_)
    return params
