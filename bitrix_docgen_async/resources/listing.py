"""Lists: awaitable for the first page, async-iterable over every item of every page.

Bitrix24 lists return 50 rows per call with ``total`` and ``next`` (docs/portal.md#pagination). Once
the
first page tells the total, the following pages are requested concurrently, a window of up to 50
at a time, so they travel together through the batcher: 24 more pages cost one HTTP request, not
24. The portal's figures are hints, not orders (:mod:`bitrix_docgen_async.core.paging`): the walk
stops on an empty page or a ``next`` that does not advance, ``total`` only sizes a bounded
window, and the next window is asked for only while pages come back full.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from typing import Any, Generic, TypeVar

from bitrix_docgen_async.core.paging import PAGE_SIZE, following_start, window_starts
from bitrix_docgen_async.models import Page
from bitrix_docgen_async.session import CommandResult

__all__ = ["PAGE_SIZE", "Listing"]

log = logging.getLogger("bitrix_docgen_async.listing")

T = TypeVar("T")

#: How many pages are requested at once: one batch's worth.
_WINDOW = 50

Fetch = Callable[[str, Mapping[str, Any]], Awaitable[CommandResult]]


class Listing(Generic[T]):
    """The result of ``resource.list(...)``.

    ``await listing`` gives the first :class:`Page`; ``async for item in listing`` walks every
    item in the portal's order, fetching later pages concurrently in windows of 50 pages.
    """

    def __init__(
        self,
        fetch: Fetch,
        method: str,
        params: Mapping[str, Any],
        parse: Callable[[CommandResult], Page[T]],
    ) -> None:
        self._fetch = fetch
        self._method = method
        self._params = dict(params)
        self._parse = parse

    async def page(self, start: int = 0) -> Page[T]:
        """The page that begins at offset ``start``."""
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start must be an int >= 0, got {start!r}")
        reply = await self._fetch(self._method, {**self._params, "start": start})
        return self._parse(reply)

    def __await__(self) -> Generator[Any, None, Page[T]]:
        return self.page(0).__await__()

    async def __aiter__(self) -> AsyncIterator[T]:
        first = await self.page(0)
        for item in first.items:
            yield item
        start = self._following(0, first)
        # Pages are fetched a window at a time only while the portal pages as documented: full
        # pages of 50, each ``next`` 50 further. Anything else is walked one page at a time.
        fan_out = first.total is not None and len(first.items) == PAGE_SIZE == start
        while start is not None:
            starts = window_starts(start, first.total, window=_WINDOW) if fan_out else [start]
            pages = await asyncio.gather(*(self.page(s) for s in starts))
            for at, page in zip(starts, pages, strict=True):
                if at != start:
                    break  # ``next`` pointed elsewhere: the rest of this window is not the list
                for item in page.items:
                    yield item
                start = self._following(at, page)
                if start is None:
                    break
                if start != at + PAGE_SIZE or len(page.items) != PAGE_SIZE:
                    fan_out = False  # not paging as documented: go on one page at a time

    def _following(self, start: int, page: Page[T]) -> int | None:
        following = following_start(start, page.next, len(page.items))
        if following is None and page.items and page.next is not None:
            log.warning(
                "%s: next=%d after the page at start=%d cannot be followed; the list ends here",
                self._method,
                page.next,
                start,
            )
        return following
