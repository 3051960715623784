"""``portal.models``: the fake portal's stored records as the client's models.

``portal.documents``/``templates``/``numerators`` stay raw on purpose: they show the wire as the
portal sends it (camelCase, string numbers, ``"Y"``/``"N"``), which is what a test of the fake
portal or of the converter asserts on, and what users' tests written against them read. For a
test of an application, ``portal.models.documents[id]`` is the same :class:`Document` the client
would return, structured by the client's one converter (``core/convert.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from bitrix_docgen_async.core.convert import structure
from bitrix_docgen_async.models import Document, Numerator, Template

if TYPE_CHECKING:
    from bitrix_docgen_async.testing.portal import FakePortal

__all__ = ["PortalModels"]

_M = TypeVar("_M")


class _Structured(Mapping[int, _M]):
    """A read-only mapping structuring each raw record when it is looked up."""

    def __init__(self, raw: Mapping[int, Mapping[str, Any]], cls: type[_M]) -> None:
        self._raw = raw
        self._cls = cls

    def __getitem__(self, key: int) -> _M:
        return structure(self._raw[key], self._cls)

    def __iter__(self) -> Iterator[int]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class PortalModels:
    """Read-only views of a fake portal's records as :class:`Document`, :class:`Template` and
    :class:`Numerator` (looked up by id; each lookup renders the current state)."""

    def __init__(self, portal: FakePortal) -> None:
        self._portal = portal

    @property
    def documents(self) -> Mapping[int, Document]:
        """Stored documents, as ``client.documents.get`` returns them."""
        return _Structured(self._portal.documents, Document)

    @property
    def templates(self) -> Mapping[int, Template]:
        """Stored templates (deleted ones too), as ``client.templates.get`` returns them."""
        return _Structured(self._portal.templates, Template)

    @property
    def numerators(self) -> Mapping[int, Numerator]:
        """Stored numerators, as ``client.numerators.get`` returns them."""
        return _Structured(self._portal.numerators, Numerator)
