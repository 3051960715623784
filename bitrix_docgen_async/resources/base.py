"""What every resource shares: the client it sends through and the unwrapping of results."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from bitrix_docgen_async.core.convert import structure
from bitrix_docgen_async.errors import ResponseError
from bitrix_docgen_async.session import CommandResult

if TYPE_CHECKING:
    from bitrix_docgen_async.client import DocgenClient

__all__ = ["Resource", "settle_many", "unwrap"]

T = TypeVar("T")

#: All document-generator methods share this prefix.
PREFIX = "crm.documentgenerator."
#: How many failed positions the message of a ``call_many``/``get_many`` failure names.
_NAMED = 10


def unwrap(result: Any, key: str, method: str) -> Any:
    """The value under the wrapping key (``{"document": {...}}`` -> ``{...}``)."""
    if not isinstance(result, Mapping) or key not in result:
        raise ResponseError(f"{method}: the result has no {key!r}", status=200)
    return result[key]


def settle_many(
    method: str,
    outcomes: Sequence[Any],
    *,
    return_exceptions: bool,
    label: Callable[[int], str] | None = None,
) -> list[Any]:
    """Each call's value, in order, or the failures as one group.

    Args:
        method: the method called, for the messages.
        outcomes: each call's value (its result, read) or exception, in order.
        return_exceptions: put each failure in its place instead of raising.
        label: names a position in the messages (``"document 61"``); ``"call #N"`` if not given.

    Raises:
        ExceptionGroup: without ``return_exceptions``, when any call failed: the exceptions in
            order, each with a note naming its position (an exception shared by several calls,
            such as the one of a closed client, once).
    """
    values = list(outcomes)
    failed = [(i, v) for i, v in enumerate(values) if isinstance(v, BaseException)]
    if not failed or return_exceptions:
        return values
    name = label or (lambda index: f"call #{index}")
    errors: list[Exception] = []
    seen: set[int] = set()
    for index, error in failed:
        if not isinstance(error, Exception):  # a BaseException (not an error) goes as it is
            raise error
        if id(error) not in seen:
            seen.add(id(error))
            errors.append(_noted(error, f"{method}: {name(index)}"))
    named = ", ".join(name(index) for index, _ in failed[:_NAMED])
    more = f" and {len(failed) - _NAMED} more" if len(failed) > _NAMED else ""
    raise ExceptionGroup(
        f"{method}: {len(failed)} of {len(outcomes)} calls failed ({named}{more})", errors
    )


def _noted(error: Exception, note: str) -> Exception:
    """``error`` with ``note`` added, on a copy: one exception may be shared by many calls
    (a failed request fails all its commands), and notes for one caller must not pile up on
    what another caller sees."""
    try:
        clone = copy.copy(error)
    except Exception:  # an exception that cannot be copied gets the note itself
        error.add_note(note)
        return error
    clone.__notes__ = [*getattr(error, "__notes__", ()), note]
    clone.__cause__, clone.__context__ = error.__cause__, error.__context__
    clone.__suppress_context__ = error.__suppress_context__
    return clone.with_traceback(error.__traceback__)


class Resource:
    """Builds calls and structures results; sending, pacing and retries are the client's."""

    def __init__(self, client: DocgenClient) -> None:
        self._client = client

    async def _send(self, method: str, params: Mapping[str, Any]) -> CommandResult:
        return await self._client.call_full(method, params)

    async def _one(self, method: str, params: Mapping[str, Any], key: str, cls: type[T]) -> T:
        reply = await self._client.call_full(method, params)
        return structure(unwrap(reply.result, key, method), cls)
