"""Lists from a portal whose ``total``/``next`` lie: each walk ends after a bounded number of calls.

Observed before: a ``next`` stuck at 50 with no ``total`` was followed 500 times (for ever, had
nobody stopped it); ``total = 1e7`` fetched 200,000 empty pages; ``total = 1e12`` raised
``MemoryError`` building the page list up front. Each test here swaps the fake portal's
``document.list`` for one that reports such figures, and bounds the walk with a deadline and a
cap on the list calls the portal will answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from bitrix_docgen_async import DocgenClient
from bitrix_docgen_async.cli import main
from bitrix_docgen_async.testing import FakePortal
from bitrix_docgen_async.testing.state import CallContext, PortalError

LIST = "crm.documentgenerator.document.list"
#: More list calls than any of these walks may need; past it the portal refuses, so that a
#: regression fails fast instead of running on.
CAP = 200

Paged = tuple[dict[str, Any], Any, Any]
Rewrite = Callable[[int, list[dict[str, Any]], int], Paged]


def lying_portal(portal: FakePortal, rewrite: Rewrite) -> list[int]:
    """Replace ``document.list`` by one whose page at ``start`` is ``rewrite(start, rows, total)``.

    ``rows`` are every matching row (the real handler, page after page). Returns the list of
    ``start`` values the portal was asked for.
    """
    spec = portal.registry.get(LIST)
    assert spec is not None
    original = spec.handler
    asked: list[int] = []

    def every_row(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        start: Any = 0
        while start is not None:
            page, _, start = original(ctx, {**params, "start": start})
            rows.extend(page["documents"])
        return rows

    def handler(ctx: CallContext, params: dict[str, Any]) -> Paged:
        start = int(params.get("start", 0))
        asked.append(start)
        if len(asked) > CAP:
            raise PortalError("TEST_CAP", f"more than {CAP} list calls")
        rows = every_row(ctx, {k: v for k, v in params.items() if k != "start"})
        return rewrite(start, rows, len(rows))

    portal.registry.register(LIST, handler, paged=True)
    return asked


def seed(portal: FakePortal, count: int) -> list[int]:
    template = portal.seed_template()
    return [portal.seed_document(template, 2, 100 + i) for i in range(count)]


async def walk(client: DocgenClient) -> list[int]:
    async with asyncio.timeout(30):
        return [d.id async for d in client.documents.list(order={"id": "asc"})]


async def test_a_next_stuck_at_50_without_total_is_not_followed_round(
    portal: FakePortal, client: DocgenClient
) -> None:
    ids = seed(portal, 120)

    def stuck(start: int, rows: list[dict[str, Any]], total: int) -> Paged:
        return {"documents": rows[start : start + 50]}, None, 50

    asked = lying_portal(portal, stuck)
    assert await walk(client) == ids[:100]
    assert asked == [0, 50]
    assert portal.stats.requests == 2


@pytest.mark.parametrize("total", [1e7, 1e12, 10**30])
async def test_an_absurd_total_with_empty_pages_costs_one_window(
    portal: FakePortal, client: DocgenClient, total: float
) -> None:
    ids = seed(portal, 60)

    def inflated(start: int, rows: list[dict[str, Any]], _: int) -> Paged:
        page = rows[:50] if start == 0 else []  # nothing past the first page
        return {"documents": page}, total, start + 50

    asked = lying_portal(portal, inflated)
    assert await walk(client) == ids[:50]
    # The first page, then one window of 50 pages (one batch request); all empty: the end.
    assert asked[0] == 0 and sorted(asked[1:]) == list(range(50, 2550, 50))
    assert portal.stats.requests <= 3


async def test_an_absurd_total_still_lists_every_row_while_pages_are_full(
    portal: FakePortal, client: DocgenClient
) -> None:
    ids = seed(portal, 130)

    def inflated(start: int, rows: list[dict[str, Any]], _: int) -> Paged:
        page = rows[start : start + 50]
        return {"documents": page}, 1e12, start + 50 if page else None

    asked = lying_portal(portal, inflated)
    assert await walk(client) == ids
    assert len(asked) == 51 and portal.stats.requests <= 3


@pytest.mark.parametrize("reported", [0, 25, 10**30])
async def test_a_next_that_goes_back_or_off_the_scale_ends_the_list(
    portal: FakePortal, client: DocgenClient, reported: int
) -> None:
    ids = seed(portal, 60)

    def wrong(start: int, rows: list[dict[str, Any]], total: int) -> Paged:
        next_ = reported if start >= 50 else 50
        return {"documents": rows[start : start + 50]}, total, next_

    asked = lying_portal(portal, wrong)
    assert await walk(client) == ids  # both real pages, then the walk stops
    assert asked == [0, 50]


async def test_pages_of_another_size_are_walked_by_next_without_gaps(
    portal: FakePortal, client: DocgenClient
) -> None:
    ids = seed(portal, 100)

    def by_twenty(start: int, rows: list[dict[str, Any]], total: int) -> Paged:
        following = start + 20 if start + 20 < total else None
        return {"documents": rows[start : start + 20]}, total, following

    asked = lying_portal(portal, by_twenty)
    assert await walk(client) == ids
    assert asked == [0, 20, 40, 60, 80]


async def test_the_window_follows_next_when_a_page_comes_back_short(
    portal: FakePortal, client: DocgenClient
) -> None:
    ids = seed(portal, 200)

    def short_third(start: int, rows: list[dict[str, Any]], total: int) -> Paged:
        # The page at 100 holds 10 rows only (rows hidden from this user, say) but says more
        # follow at 150: the rows after it come from next, one page at a time.
        size = 10 if start == 100 else 50
        following = start + 50 if start + 50 < total else None
        return {"documents": rows[start : start + size]}, total, following

    asked = lying_portal(portal, short_third)
    assert await walk(client) == ids[:110] + ids[150:]
    assert asked == [0, 50, 100, 150]


async def test_the_cli_list_with_a_limit_stops_on_an_empty_page(
    portal: FakePortal, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(portal, 30)

    def endless(start: int, rows: list[dict[str, Any]], _: int) -> Paged:
        return {"documents": rows[start : start + 50]}, 1e12, start + 50

    asked = lying_portal(portal, endless)
    monkeypatch.setenv("BITRIX_WEBHOOK_URL", portal.webhook_url)
    async with asyncio.timeout(30):
        code = await asyncio.to_thread(main, ["documents", "list", "--limit", "100"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Documents (30 of 1000000000000)" in out
    assert asked == [0, 50]
