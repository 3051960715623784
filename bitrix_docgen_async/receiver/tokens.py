"""The application tokens of many portals, keyed by ``member_id`` (docs/portal.md#events).

Each portal signs its events with its own ``auth[application_token]``, first sent with
``ONAPPINSTALL`` (docs/portal.md#installation-and-many-portals). :class:`TokenBook` gives the
receiver one interface over what the application keeps them in: a mutable mapping (a ``dict``,
a ``shelve``...) that the receiver fills and clears itself, or an async lookup
``await tokens(member_id) -> str | None`` with optional ``save_token``/``forget_token``
callables for the two changes.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

__all__ = ["ForgetToken", "SaveToken", "TokenBook", "TokenLookup", "TokenSource"]

#: ``await lookup(member_id)``: the portal's application token, or ``None`` if unknown.
TokenLookup: TypeAlias = Callable[[str], Awaitable[str | None]]
#: ``await save(member_id, token)``: store the token of a portal not known yet. Only called
#: after a lookup found none; with several receivers, make it an insert-if-absent.
SaveToken: TypeAlias = Callable[[str, str], Awaitable[Any]]
#: ``await forget(member_id)``: the application was removed from that portal.
ForgetToken: TypeAlias = Callable[[str], Awaitable[Any]]
#: What ``EventReceiver(tokens=...)`` accepts.
TokenSource: TypeAlias = MutableMapping[str, str] | TokenLookup


class TokenBook:
    """Looks up, adds (only when absent) and removes application tokens by ``member_id``.

    Args:
        source: a mutable mapping ``member_id -> token``, or an async lookup.
        save_token: with a lookup, how a new portal's token is stored (without it, tokens
            from ``ONAPPINSTALL`` are not kept: the application stores them itself).
        forget_token: with a lookup, how a removed portal's token is dropped.
    """

    def __init__(
        self,
        source: TokenSource,
        *,
        save_token: SaveToken | None = None,
        forget_token: ForgetToken | None = None,
    ) -> None:
        if isinstance(source, MutableMapping):
            if save_token is not None or forget_token is not None:
                raise ValueError("save_token/forget_token go with a lookup callable, not a mapping")
        elif not callable(source):
            raise TypeError("tokens must be a mutable mapping or an async callable")
        self._source = source
        self._save = save_token
        self._forget = forget_token

    async def lookup(self, member_id: str) -> str | None:
        """The token of the portal ``member_id``, or ``None``."""
        if isinstance(self._source, MutableMapping):
            value = self._source.get(member_id)
        else:
            value = await _maybe_await(self._source(member_id))
        return value if isinstance(value, str) and value else None

    async def add_new(self, member_id: str, token: str) -> bool:
        """Store ``token`` for a portal without one; False when it is not stored.

        A mapping is checked and written without a pause in between (one event loop, no
        ``await``), so two concurrent installs cannot both win.
        """
        if isinstance(self._source, MutableMapping):
            if self._source.get(member_id):
                return False
            self._source[member_id] = token
            return True
        if self._save is None:
            return False
        await _maybe_await(self._save(member_id, token))
        return True

    async def remove(self, member_id: str) -> None:
        """Forget the token of ``member_id``."""
        if isinstance(self._source, MutableMapping):
            self._source.pop(member_id, None)
        elif self._forget is not None:
            await _maybe_await(self._forget(member_id))


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
