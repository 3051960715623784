"""Parsing of the command line's values: id lists with ranges, entity types, JSON values.

Each parser raises :class:`argparse.ArgumentTypeError` with a one-line message, so that argparse
reports it as a usage error naming the option.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bitrix_docgen_async.core import validate as check
from bitrix_docgen_async.models import EntityType

__all__ = ["IdRanges", "entity_type", "entity_type_name", "json_values", "parse_ids"]

_ITEM = re.compile(r"(\d+)(?:\s*-\s*(\d+))?")


class IdRanges:
    """A set of positive ids given as ``1-500,7,9``: iterated lazily, ascending, each once.

    Overlaps are merged (``1-500,7,9`` is 500 ids), so a range as long as you like costs no
    memory.

    Args:
        spans: inclusive ``(first, last)`` pairs, in any order, possibly overlapping.
    """

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        merged: list[tuple[int, int]] = []
        for first, last in sorted(spans):
            if merged and first <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        self.spans: tuple[tuple[int, int], ...] = tuple(merged)

    def __iter__(self) -> Iterator[int]:
        for first, last in self.spans:
            yield from range(first, last + 1)

    def __len__(self) -> int:
        return sum(last - first + 1 for first, last in self.spans)

    def __repr__(self) -> str:
        text = ",".join(f"{a}-{b}" if a != b else str(a) for a, b in self.spans)
        return f"IdRanges({text!r})"


def parse_ids(text: str) -> IdRanges:
    """Parse ``1-500,7,9`` (spaces allowed) into :class:`IdRanges`.

    Raises:
        argparse.ArgumentTypeError: an item is not an id or a range, an id is 0, or a range
            runs backwards.
    """
    spans: list[tuple[int, int]] = []
    for raw in text.split(","):
        item = raw.strip()
        match = _ITEM.fullmatch(item)
        if match is None:
            what = repr(item) if item else "an empty item"
            raise argparse.ArgumentTypeError(
                f"{what} is not an id or a range (expected e.g. 1-500,7,9)"
            )
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if first < 1:
            raise argparse.ArgumentTypeError(f"ids start at 1, got {item!r}")
        if last < first:
            raise argparse.ArgumentTypeError(f"the range {item!r} runs backwards")
        spans.append((first, last))
    return IdRanges(spans)


def entity_type(text: str) -> int:
    """An entity type by name (``deal``, ``Smart_Invoice``, ``smart-invoice``) or number.

    Raises:
        argparse.ArgumentTypeError: neither a known name nor a valid type id.
    """
    name = text.strip().upper().replace("-", "_")
    if name in EntityType.__members__:
        return int(EntityType[name])
    names = ", ".join(member.name.lower() for member in EntityType)
    if not name.isdigit():
        raise argparse.ArgumentTypeError(f"unknown entity type {text!r} (use {names} or a number)")
    try:
        return check.entity_type("entity type", int(name))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def entity_type_name(type_id: int) -> str:
    """``deal`` for 2, the number itself for a smart process."""
    try:
        return EntityType(type_id).name.lower()
    except ValueError:
        return str(type_id)


def json_values(text: str) -> dict[str, Any]:
    """A JSON object given inline or as ``@file.json``.

    Raises:
        argparse.ArgumentTypeError: unreadable file, invalid JSON, or not an object.
    """
    source = "JSON"
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise argparse.ArgumentTypeError(f"cannot read {path}: {exc}") from None
        source = str(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"invalid {source}: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f'expected a JSON object such as {{"Comment": "text"}}, got {type(value).__name__}'
        )
    return value
