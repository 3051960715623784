"""The in-process backend's batch calls book what the same calls one by one would (issue 15)."""

from __future__ import annotations

from bitrix_docgen_async.core.ratelimit import OperatingBudget
from bitrix_docgen_async.limiter import Limiter, MemoryBackend
from tests.helpers import FakeClock

BUDGET = OperatingBudget(limit_s=1.0, window_s=10.0)
GET = "crm.documentgenerator.document.get"


async def test_reserve_each_grants_what_fits_in_order() -> None:
    clock = FakeClock()
    one_by_one = MemoryBackend(None, BUDGET, clock=clock)
    granted = 0
    for cost in (0.4, 0.4, 0.4, 0.1):
        if not await one_by_one.try_reserve(GET, cost):
            break
        granted += 1
    limiter = Limiter(MemoryBackend(None, BUDGET, clock=clock), BUDGET, clock=clock)
    assert await limiter.reserve(GET, (0.4, 0.4, 0.4, 0.1)) == granted == 2
    assert await limiter.reserve(GET, (0.3,)) == 0  # 0.8 held: 0.3 does not fit


async def test_settle_each_books_as_settle_does() -> None:
    clock = FakeClock()
    single = Limiter(MemoryBackend(None, BUDGET, clock=clock), BUDGET, clock=clock)
    batched = Limiter(MemoryBackend(None, BUDGET, clock=clock), BUDGET, clock=clock)
    bookings = [(GET, 0.2, 0.3, None, None, 0.1), (GET, 0.2, 0.1, 0.6, 30.0, 0.0)]
    for limiter in (single, batched):
        assert await limiter.reserve(GET, (0.2, 0.2)) == 2
    for booking in bookings:
        await single.settle(*booking)
    await batched.settle_each(bookings)
    assert single.budget_spent == batched.budget_spent == {GET: 0.6}
    assert single.budget_left == batched.budget_left
    for limiter in (single, batched):  # the same headroom left: 0.4 fits, 0.5 does not
        assert await limiter.has_room(GET, 0.4)
        assert not await limiter.has_room(GET, 0.5)
