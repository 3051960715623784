"""``client.call(method, params, into=Model)``: a raw result structured into a model.

The one converter (``core/convert.py``) does it, so a model returned by ``call`` is the same as
the one a resource returns, with the same wire quirks handled (string numbers, ``"Y"``/``"N"``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from bitrix_docgen_async.core.convert import structure
from bitrix_docgen_async.resources.base import settle_many, unwrap

__all__ = ["settle_many", "structure_result"]

T = TypeVar("T")


def structure_result(result: Any, into: type[T], *, key: str | None, method: str) -> T:
    """``result`` (under ``key`` if given, e.g. ``"document"``) as an ``into``.

    Raises:
        ResponseError: no ``key`` in the result, or the result does not fit ``into`` (with
            cattrs' details of every mismatch).
    """
    if key is not None:
        result = unwrap(result, key, method)
    return structure(result, into)
