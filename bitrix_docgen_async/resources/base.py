"""What every resource shares: the client it sends through and the unwrapping of results."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from bitrix_docgen_async.core.convert import structure
from bitrix_docgen_async.errors import ResponseError
from bitrix_docgen_async.session import CommandResult

if TYPE_CHECKING:
    from bitrix_docgen_async.client import DocgenClient

__all__ = ["Resource", "unwrap"]

T = TypeVar("T")

#: All document-generator methods share this prefix.
PREFIX = "crm.documentgenerator."


def unwrap(result: Any, key: str, method: str) -> Any:
    """The value under the wrapping key (``{"document": {...}}`` -> ``{...}``)."""
    if not isinstance(result, Mapping) or key not in result:
        raise ResponseError(f"{method}: the result has no {key!r}", status=200)
    return result[key]


class Resource:
    """Builds calls and structures results; sending, pacing and retries are the client's."""

    def __init__(self, client: DocgenClient) -> None:
        self._client = client

    async def _send(self, method: str, params: Mapping[str, Any]) -> CommandResult:
        return await self._client.call_full(method, params)

    async def _one(self, method: str, params: Mapping[str, Any], key: str, cls: type[T]) -> T:
        reply = await self._send(method, params)
        return structure(unwrap(reply.result, key, method), cls)
