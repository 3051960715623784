"""Paging arithmetic for list methods, with the portal's ``total`` and ``next`` as hints only.

Bitrix24 lists return a page of 50 rows with ``total`` (rows matching) and ``next`` (the
``start`` of the next page, only when there is one; docs/portal.md#pagination). A client that trusts
those
figures can be led anywhere: a ``next`` that never advances is followed forever, and a ``total``
of ``1e12`` asks for twenty billion pages. So:

* paging stops on an empty page, on a missing ``next``, and on a ``next`` that does not advance
  past the page's own ``start`` (or that no portal could hold: beyond PHP's integer range);
* ``total`` only sizes how many pages are asked for at once, within a bounded window; pages are
  never listed up front from it, and the walk goes on only while pages come back full.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_START", "PAGE_SIZE", "following_start", "window_starts"]

#: The docgen lists' fixed page size (docs/portal.md#pagination).
PAGE_SIZE: Final = 50
#: The largest ``start`` worth sending: PHP's ``PHP_INT_MAX``. A ``next`` beyond it is nonsense.
MAX_START: Final = 2**63 - 1


def following_start(start: int, reported_next: int | None, count: int) -> int | None:
    """Where the walk goes on after the page at ``start``, or ``None`` where it ends.

    Args:
        start: the ``start`` this page was asked for.
        reported_next: the page's ``next``, as the portal reported it.
        count: how many rows the page held.

    Returns:
        ``reported_next`` when it is believable: the page had rows and ``next`` advances past
        ``start`` without leaving PHP's integer range. ``None`` otherwise: the list is over, or
        the portal's figures cannot be followed without going round in circles.
    """
    if count <= 0 or reported_next is None:
        return None
    if reported_next <= start or reported_next > MAX_START:
        return None
    return reported_next


def window_starts(
    start: int, total: int | None, *, window: int, page_size: int = PAGE_SIZE
) -> list[int]:
    """The ``start`` of each page to ask for together, beginning at ``start``.

    Args:
        start: the first page's ``start``.
        total: the ``total`` the portal reported, if any. Used only to avoid asking for pages
            past it; any value, however large or negative, gives at most ``window`` pages.
        window: the most pages asked for at once (>= 1).
        page_size: rows per page.

    Returns:
        1 to ``window`` consecutive starts ``start, start + page_size, ...``: just ``[start]``
        when ``total`` is unknown or says no row lies at ``start`` or beyond (the walk then
        follows ``next`` one page at a time).
    """
    if window < 1 or page_size < 1:
        raise ValueError(f"window and page_size must be >= 1, got {window} and {page_size}")
    if total is None or total <= start:
        return [start]
    pages = min(window, -(-(total - start) // page_size))
    return [start + index * page_size for index in range(pages)]
