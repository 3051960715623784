"""Lists: awaitable for the first page, async-iterable over every item of every page.

Bitrix24 lists return 50 rows per call with ``total`` and ``next`` (docs/portal.md#pagination). Once
the first page tells the total, the remaining pages are requested concurrently, so they travel
together through the batcher: 24 more pages cost one HTTP request, not 24.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from typing import Any, Generic, TypeVar

from bitrix_docgen_async.models import Page
from bitrix_docgen_async.session import CommandResult

__all__ = ["PAGE_SIZE", "Listing"]

T = TypeVar("T")

#: The docgen lists' fixed page size.
PAGE_SIZE = 50
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
        if first.next is None:
            return
        if first.total is None:
            # No total: walk page by page as ``next`` says.
            start: int | None = first.next
            while start is not None:
                page = await self.page(start)
                for item in page.items:
                    yield item
                start = page.next
            return
        starts = list(range(first.next, first.total, PAGE_SIZE))
        for offset in range(0, len(starts), _WINDOW):
            window = starts[offset : offset + _WINDOW]
            pages = await asyncio.gather(*(self.page(s) for s in window))
            for page in pages:
                for item in page.items:
                    yield item
