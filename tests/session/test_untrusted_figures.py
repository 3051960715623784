"""A reply's ``time`` figures are untrusted: durations and reset times are bounded.

The portal cuts every request off after 60 s (docs/portal.md#request-time-out) and no budget
bucket outlives the window (docs/portal.md#operating-time-per-method): a figure beyond either
is not believed, so one bad reply can neither erase a batch's bookings nor block a method for
longer than a window.
"""

from __future__ import annotations

import asyncio

import pytest

from bitrix_docgen_async import DocgenClient, OperatingBudget
from bitrix_docgen_async.core.ratelimit import (
    MAX_CALL_S,
    plausible_duration,
    plausible_reset_in,
)
from bitrix_docgen_async.limiter import Limiter, MemoryBackend
from tests.session.fakes import WEBHOOK, FakeClock, FakeTransport

GET = "crm.documentgenerator.numerator.get"
BUDGET = OperatingBudget(limit_s=480.0, window_s=600.0)


def test_durations_are_bounded_to_the_portal_s_cut_off() -> None:
    assert plausible_duration(None) is None
    assert plausible_duration(3.25) == 3.25
    assert plausible_duration(-50.0) == 0.0
    assert plausible_duration(1e7) == MAX_CALL_S == 60.0


def test_reset_times_are_bounded_to_one_window() -> None:
    assert plausible_reset_in(30.0, 600.0) == 30.0
    assert plausible_reset_in(-5.0, 600.0) == 0.0
    assert plausible_reset_in(30 * 86400.0, 600.0) == 600.0


async def _booked_after(costs: list[float]) -> tuple[float, float]:
    """What the ledger holds for GET right after one batch with these durations, and the
    client's cost estimate for GET afterwards."""
    clock = FakeClock()
    count = len(costs)
    transport = FakeTransport(costs={GET: list(costs)})  # it takes them in turn
    async with DocgenClient.from_webhook(
        WEBHOOK,
        transport=transport,
        clock=clock,
        sleep=clock.sleep,
        rate_limit=None,
        operating_budget=BUDGET,
    ) as client:
        # One probe first (an unmeasured method's first batch goes alone), then one batch.
        await client.call(GET, {"id": 0})
        await asyncio.gather(*(client.call(GET, {"id": i}) for i in range(1, count)))
        backend = client.session.limiter.backend
        assert isinstance(backend, MemoryBackend)
        ledger = backend._ledger(GET)
        assert ledger is not None
        return ledger.booked(clock.now), client.session.costs.estimate(GET)


async def test_a_huge_duration_does_not_erase_the_batch_s_bookings() -> None:
    booked, estimate = await _booked_after([1.0, 10.0, 10.0, 1e7])
    # 1 + 10 + 10 + 60 (not 0: a duration beyond the window used to expire every booking)
    assert booked == pytest.approx(81.0)
    assert 0.0 < estimate <= MAX_CALL_S * 1.5


async def test_a_negative_duration_books_nothing_and_estimates_stay_positive() -> None:
    booked, estimate = await _booked_after([1.0, -50.0, -50.0, -50.0])
    assert booked == pytest.approx(1.0)
    assert estimate >= 0.0


async def test_a_suspension_never_outlasts_one_window() -> None:
    clock = FakeClock()
    limiter = Limiter(MemoryBackend(None, BUDGET, clock=clock), BUDGET, clock=clock)
    # A reply says the oldest bucket drops out in 30 days (or our wall clock is far off) ...
    await limiter.settle(GET, 0.0, 1.0, 480.0, 30 * 86400.0)
    # ... and the next call is refused with 429.
    await limiter.suspend(GET)
    assert limiter.blocked(GET)
    clock.advance(BUDGET.window_s - 1.0)
    assert limiter.blocked(GET)
    clock.advance(1.5)
    assert not limiter.blocked(GET)
