"""Finding the document an add made when its answer was lost, and adding at most once.

``crm.documentgenerator.document.add`` is not idempotent (docs/portal.md#document-generator): after
an ambiguous
failure (a dropped connection, a timeout, a 5xx after sending) the portal may have committed the
document. Before adding again the client looks for it with ``document.list`` filtered by
template, entity type and entity, **newest first** (``order: {id: desc}``): the newest
document is the add's if it was created since the add began. Reading the first page in the
portal's default order (id ascending) would see the 50 oldest documents and miss the new one of
an entity that already had 50.

"Older than the add" is decided on the portal's own clock: the ``time.start`` of the lookup's
reply, less the local time that passed since the add began, is a moment no later than the add's
start on the portal (docs/portal.md#responses-and-the-time-object), whatever the difference between
the two clocks.
Without a ``time`` block a wide margin stands in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bitrix_docgen_async.core.convert import structure
from bitrix_docgen_async.models import Document
from bitrix_docgen_async.resources.base import PREFIX, unwrap
from bitrix_docgen_async.session import CommandResult

__all__ = ["KeyedLocks", "find_added"]

Fetch = Callable[[str, Mapping[str, Any]], Awaitable[CommandResult]]

#: ``createTime`` has whole seconds: a document made in the add's first second may show a
#: creation time up to one second before the add began.
_MARGIN_S = 1.0
#: Without the portal's clock, local and portal clocks may differ by this much.
_SKEW_S = 120.0
#: Never walk more pages than this for one entity (a runaway ``next`` must end).
_MAX_PAGES = 10_000


def _since_on_portal(reply: CommandResult, since: float, received: float) -> float:
    """The add's start (local wall clock ``since``) as a moment on the portal's clock.

    The reply's ``time.start`` came before ``received`` on the local clock, so ``start -
    received`` underestimates the portal's lead and the result errs early: a document of the
    add is never taken for an older one.
    """
    start = reply.time.start if reply.time is not None else None
    if start is None or start <= 0:
        return since - _SKEW_S
    return since + (start - received) - _MARGIN_S


async def find_added(
    fetch: Fetch,
    template_id: int,
    entity_type_id: int,
    entity_id: int,
    since: float,
    *,
    clock: Callable[[], float] = time.time,
) -> Document | None:
    """The document an add begun at ``since`` (local wall clock) created, if the portal has it.

    Calls ``crm.documentgenerator.document.list`` newest first, reading on past rows that do
    not match (a filter the portal did not honour). The newest matching document is the add's
    when it was created since ``since``: ``createTime`` has whole seconds, so a document made
    a moment before the add (an earlier add of the same entity) may also count as "since",
    and only the newest can be the add's own (reconciling adds of one entity run one at a time).

    Args:
        fetch: ``client.call_full``.
        template_id, entity_type_id, entity_id: what the add was for.
        since: when the (first) add attempt began, by ``clock``.
        clock: the local wall clock (injected in tests).
    """
    params: dict[str, Any] = {
        "filter": {
            "templateId": template_id,
            "entityTypeId": entity_type_id,
            "entityId": entity_id,
        },
        "order": {"id": "desc"},
    }
    start = 0
    cutoff: float | None = None
    for _ in range(_MAX_PAGES):
        reply = await fetch(PREFIX + "document.list", {**params, "start": start})
        if cutoff is None:
            cutoff = _since_on_portal(reply, since, clock())
        rows = unwrap(reply.result, "documents", "document.list") or []
        for row in rows:
            document = structure(row, Document)
            if (document.template_id, document.entity_type_id, document.entity_id) != (
                template_id,
                entity_type_id,
                entity_id,
            ):
                continue  # the filter was not honoured for this row: not ours
            created = document.created_time
            if created is not None and created.timestamp() < cutoff:
                return None  # newest first: the newest one is older than the add
            return document
        if not rows or reply.next is None or reply.next <= start:
            return None
        start = reply.next
    return None


class KeyedLocks:
    """One ``asyncio.Lock`` per key, dropped once nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Any, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    def hold(self, key: Any) -> _Held:
        """``async with locks.hold(key):`` runs the block alone for ``key``."""
        return _Held(self, key)

    def _enter(self, key: Any) -> asyncio.Lock:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        return lock

    def _leave(self, key: Any) -> None:
        lock, users = self._locks[key]
        if users <= 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)


class _Held:
    def __init__(self, owner: KeyedLocks, key: Any) -> None:
        self._owner = owner
        self._key = key
        self._lock: asyncio.Lock | None = None

    async def __aenter__(self) -> None:
        self._lock = self._owner._enter(self._key)
        try:
            await self._lock.acquire()
        except BaseException:
            self._owner._leave(self._key)
            raise

    async def __aexit__(self, *exc: object) -> None:
        assert self._lock is not None
        self._lock.release()
        self._owner._leave(self._key)
