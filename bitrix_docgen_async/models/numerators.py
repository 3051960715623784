"""Numerators (``crm.documentgenerator.numerator.*``): the counters behind document numbers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["Numerator", "SequentSettings"]


@attrs.frozen
class SequentSettings:
    """The settings of the sequential number generator, the part of a numerator that counts.

    Attributes:
        start: the first number.
        step: the increment.
        length: the minimum length of the number, padded on the left (``0``: no padding).
        pad_string: the padding character.
        periodic_by: when the counter restarts: ``None``/``""`` never, or ``"day"``,
            ``"month"``, ``"year"``.
        timezone: the time zone the period boundaries are computed in.
        is_direct_numeration: whether the counter is not split by period/site.
    """

    start: int | None = None
    step: int | None = None
    length: int | None = None
    pad_string: str | None = None
    periodic_by: str | None = None
    timezone: str | None = None
    is_direct_numeration: bool | None = None


@attrs.frozen
class Numerator:
    """A numerator: a template for document numbers and the counter that fills it.

    Numbering is one counter per numerator, shared by every template that uses it.

    Attributes:
        id: the numerator id.
        name: the numerator name.
        template: the number pattern, e.g. ``"INV-{NUMBER}"``.
        code: the symbolic code, if set.
        settings: the generator settings exactly as the portal sent them (keyed by generator).
        sequent: the sequential number generator's settings read from ``settings``, if present.
    """

    id: int
    name: str
    template: str
    code: str | None = None
    settings: Mapping[str, Any] = attrs.field(factory=dict)
    sequent: SequentSettings | None = None
