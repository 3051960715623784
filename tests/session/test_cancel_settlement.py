"""A caller cancelled while its batch's results are being booked loses no booking.

With a backend that awaits (Redis, or any shared one), a batch's successes are handed over
first and settled after; a cancellation landing in between used to leave their reservations
held and their execution unbooked.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bitrix_docgen_async import DocgenClient, OperatingBudget
from bitrix_docgen_async.limiter import Limiter, MemoryBackend
from tests.session.fakes import WEBHOOK, FakeClock, FakeTransport, turns

ADD = "crm.documentgenerator.numerator.add"
BUDGET = OperatingBudget(limit_s=100.0, window_s=600.0)


class GatedBackend:
    """The in-memory backend behind awaits, as a networked one is; ``settle`` waits at a gate."""

    def __init__(self, inner: MemoryBackend) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.settling = asyncio.Event()

    async def settle(self, *booking: Any) -> None:
        self.settling.set()
        await self.gate.wait()
        await self.inner.settle(*booking)

    def __getattr__(self, name: str) -> Any:
        if name in ("settle_each", "try_reserve_each"):
            raise AttributeError(name)  # as a networked backend: no in-process fast path
        method = getattr(self.inner, name)

        async def awaited(*args: Any) -> Any:
            await asyncio.sleep(0)
            return await method(*args)

        return awaited


async def test_a_cancelled_explicit_batch_still_books_what_ran() -> None:
    clock = FakeClock()
    inner = MemoryBackend(None, BUDGET, clock=clock)
    backend = GatedBackend(inner)
    limiter = Limiter(backend, BUDGET, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    transport = FakeTransport(costs={ADD: 2.0})
    async with DocgenClient.from_webhook(
        WEBHOOK, transport=transport, clock=clock, sleep=clock.sleep, limiter=limiter
    ) as client:

        async def explicit() -> None:
            async with client.batch() as batch:
                for n in range(3):
                    batch.call(ADD, {"name": f"n{n}"})

        sending = asyncio.create_task(explicit())
        await asyncio.wait_for(backend.settling.wait(), 5.0)
        sending.cancel()  # while the batch's results are being settled
        await turns()
        backend.gate.set()
        await turns()
        assert sending.cancelled()
        ledger = inner._ledger(ADD)
        assert ledger is not None
        assert len(transport.sent(ADD)) == 3
        assert ledger.in_flight == pytest.approx(0.0, abs=1e-9)  # no reservation left held
        assert ledger.booked(clock.now) == pytest.approx(6.0)  # the three adds' real 2 s each
