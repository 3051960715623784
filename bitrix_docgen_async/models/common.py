"""Types shared by every resource: CRM entity types, a page of a list and secret redaction.

Models in this package know nothing about the wire: field names are snake_case, ids are ints,
flags are bools and times are aware datetimes. Turning the portal's JSON into them (camelCase,
string numbers, ``"Y"``/``"N"``, ``[]`` for an empty object) is the job of
:mod:`bitrix_docgen_async.core.convert`.
"""

from __future__ import annotations

import enum
from typing import Generic, TypeVar

import attrs

__all__ = ["EntityType", "Page", "redacted"]

T = TypeVar("T")


class EntityType(enum.IntEnum):
    """The CRM entity types a document can be bound to (``entityTypeId``).

    Smart processes have their own numeric ids (``177``, ...) that are not listed here; every
    model therefore stores ``entity_type_id`` as a plain ``int``, and this enum is a convenience
    for the well-known values.
    """

    LEAD = 1
    DEAL = 2
    CONTACT = 3
    COMPANY = 4
    INVOICE = 5
    QUOTE = 7
    SMART_INVOICE = 31


@attrs.frozen
class Page(Generic[T]):
    """One page of a list method.

    Attributes:
        items: the rows of this page, in the portal's order.
        total: the total number of matches the portal reported, if it reported one.
        next: the ``start`` value of the next page, or ``None`` on the last page.
    """

    items: tuple[T, ...]
    total: int | None = None
    next: int | None = None


def redacted(value: object) -> str:
    """Repr a secret-bearing value (a ``*Machine`` URL) without showing it.

    Used as ``attrs.field(repr=redacted)``: the repr says whether the value is set, never what
    it is, because those URLs carry an access token.

    Args:
        value: the field's value.

    Returns:
        ``'None'`` for no value, otherwise a fixed placeholder.
    """
    return "None" if value is None else "'<redacted>'"
