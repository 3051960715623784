"""Paging arithmetic: the portal's ``total`` and ``next`` are followed only where believable."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitrix_docgen_async.core.paging import MAX_START, PAGE_SIZE, following_start, window_starts


@pytest.mark.parametrize(
    ("start", "reported", "count", "expected"),
    [
        (0, 50, 50, 50),
        (50, 100, 50, 100),
        (50, 100, 3, 100),  # a short page that says more follows is followed
        (0, None, 50, None),  # the last page
        (50, 100, 0, None),  # an empty page ends the list whatever next says
        (50, 50, 50, None),  # next stuck
        (100, 50, 50, None),  # next going back
        (0, 0, 50, None),
        (0, MAX_START, 50, MAX_START),
        (0, MAX_START + 1, 50, None),  # no portal holds such an offset
        (0, 10**30, 50, None),
    ],
)
def test_following_start(
    start: int, reported: int | None, count: int, expected: int | None
) -> None:
    assert following_start(start, reported, count) == expected


@pytest.mark.parametrize(
    ("start", "total", "expected"),
    [
        (50, 1234, list(range(50, 1234, 50))),  # 24 pages: one window
        (50, 100, [50]),
        (50, 101, [50, 100]),
        (50, None, [50]),  # no total: one page at a time
        (50, 50, [50]),  # total says nothing is left; next said otherwise: follow next alone
        (50, -7, [50]),
        (50, 10**7, list(range(50, 50 + 50 * PAGE_SIZE, PAGE_SIZE))),
        (50, 10**12, list(range(50, 50 + 50 * PAGE_SIZE, PAGE_SIZE))),
        (50, 10**300, list(range(50, 50 + 50 * PAGE_SIZE, PAGE_SIZE))),
    ],
)
def test_window_starts(start: int, total: int | None, expected: list[int]) -> None:
    assert window_starts(start, total, window=50) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, MAX_START),
    st.none() | st.integers(-(10**20), 10**40),
    st.integers(1, 64),
    st.integers(1, 100),
)
def test_a_window_is_bounded_whatever_the_total(
    start: int, total: int | None, window: int, page_size: int
) -> None:
    starts = window_starts(start, total, window=window, page_size=page_size)
    assert 1 <= len(starts) <= window
    assert starts == [start + i * page_size for i in range(len(starts))]
    if total is not None and len(starts) > 1:
        assert starts[-1] < total


def test_window_rejects_a_zero_window() -> None:
    with pytest.raises(ValueError, match="window and page_size must be >= 1"):
        window_starts(0, 100, window=0)
