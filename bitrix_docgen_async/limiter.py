"""The async limiter: waits for request tokens and keeps each method inside its operating budget.

The arithmetic lives in :mod:`bitrix_docgen_async.core.ratelimit`; this module only adds waiting
and a backend interface, so that several processes can later share one portal's limits (the
portal keys its bucket per portal and source IP, not per process).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from bitrix_docgen_async.core.ratelimit import (
    OperatingBudget,
    OperatingLedger,
    RateLimit,
    TokenBucket,
    default_margin,
    plausible_reset_in,
)

__all__ = ["Booking", "Clock", "Limiter", "LimiterBackend", "MemoryBackend", "Sleep"]

Clock = Callable[[], float]
#: A reservation small enough to probe whether a budget has any room left.
_PROBE = 1e-6
Sleep = Callable[[float], Awaitable[None]]
#: One command's settlement: (method, reserved, actual, operating, reset_in, ended_ago).
Booking = tuple[str, float, float, float | None, float | None, float]


class LimiterBackend(Protocol):
    """Where the limit state lives. Times are seconds relative to the backend's own clock."""

    async def take_request(self) -> float:
        """Reserve one request token; return the seconds to wait before using it."""

    async def refund_request(self) -> None:
        """Give back a reserved token that was not used."""

    async def drain_requests(self) -> None:
        """The portal answered 503 ``QUERY_LIMIT_EXCEEDED``: treat its bucket as full."""

    async def try_reserve(self, method: str, seconds: float) -> bool:
        """Reserve ``seconds`` of ``method``'s budget if it fits now."""

    async def release(self, method: str, reserved: float) -> None:
        """Drop a reservation of a command that did not execute."""

    async def settle(
        self,
        method: str,
        reserved: float,
        actual: float,
        operating: float | None,
        reset_in: float | None,
        ended_ago: float = 0.0,
    ) -> None:
        """Book a command's real execution time and the portal's view of the budget.

        ``ended_ago``: how long before now the command at least ended (later commands of
        the same batch ran after it).
        """

    async def suspend(self, method: str, seconds: float) -> None:
        """The portal said 429 for ``method``: admit none of it for ``seconds``."""

    async def wait_hint(self, method: str) -> float | None:
        """Seconds until ``method``'s headroom grows by itself, if it will."""


class MemoryBackend:
    """Limits kept in this process (the default)."""

    def __init__(
        self,
        rate_limit: RateLimit | None,
        budget: OperatingBudget | None,
        *,
        clock: Clock = time.monotonic,
        margin: float | None = None,
    ) -> None:
        self._clock = clock
        self._bucket = (
            TokenBucket(
                rate_limit, clock(), default_margin(rate_limit) if margin is None else margin
            )
            if rate_limit
            else None
        )
        self._budget = budget
        self._ledgers: dict[str, OperatingLedger] = {}
        # Without a budget to pace by, a 429 still suspends its method until the reset.
        self._suspended: dict[str, float] = {}

    def _ledger(self, method: str) -> OperatingLedger | None:
        if self._budget is None:
            return None
        ledger = self._ledgers.get(method)
        if ledger is None:
            ledger = self._ledgers[method] = OperatingLedger(self._budget)
        return ledger

    async def take_request(self) -> float:
        return self._bucket.reserve(self._clock()) if self._bucket else 0.0

    async def refund_request(self) -> None:
        if self._bucket:
            self._bucket.refund(self._clock())

    async def drain_requests(self) -> None:
        if self._bucket:
            self._bucket.drain(self._clock())

    async def try_reserve(self, method: str, seconds: float) -> bool:
        return self._try(method, seconds, self._clock())

    def try_reserve_each(self, method: str, costs: Sequence[float]) -> int:
        """Reserve each of ``costs`` in order while it fits; how many were (no await each)."""
        now, granted = self._clock(), 0
        if self._budget is None:  # no ledger: all fit unless a 429 suspends the method
            return len(costs) if now >= self._suspended.get(method, 0.0) else 0
        for cost in costs:
            if not self._try(method, cost, now):
                break
            granted += 1
        return granted

    def _try(self, method: str, seconds: float, now: float) -> bool:
        ledger = self._ledger(method)
        if ledger is None:
            return now >= self._suspended.get(method, 0.0)
        headroom = ledger.headroom(now)
        # A command costlier than the whole budget still goes once nothing else is booked;
        # otherwise it could never be sent.
        idle = ledger.used(now) == 0.0 and now >= ledger.suspended_until
        if seconds <= headroom or idle:
            ledger.reserve(seconds)
            return True
        return False

    async def release(self, method: str, reserved: float) -> None:
        self.release_each([(method, reserved)])

    def release_each(self, releases: Sequence[tuple[str, float]]) -> None:
        """:meth:`release` each ``(method, reserved)`` (no await each)."""
        if self._budget is None:  # nothing was held
            return
        for method, reserved in releases:
            ledger = self._ledger(method)
            if ledger is not None:
                ledger.release(reserved)

    async def settle(
        self,
        method: str,
        reserved: float,
        actual: float,
        operating: float | None,
        reset_in: float | None,
        ended_ago: float = 0.0,
    ) -> None:
        self.settle_each([(method, reserved, actual, operating, reset_in, ended_ago)])

    def settle_each(self, bookings: Sequence[Booking]) -> None:
        """:meth:`settle` each booking (no await each)."""
        if self._budget is None:  # nothing to book into
            return
        now = self._clock()
        for method, reserved, actual, operating, reset_in, ended_ago in bookings:
            ledger = self._ledger(method)
            if ledger is None:
                continue
            ledger.settle(now, reserved, actual, ended_ago)
            if operating is not None:
                ledger.observe(now, operating, reset_in)

    async def suspend(self, method: str, seconds: float) -> None:
        ledger = self._ledger(method)
        now = self._clock()
        if ledger is None:
            self._suspended[method] = max(self._suspended.get(method, 0.0), now + seconds)
        else:
            ledger.suspend(now, now + seconds)

    async def wait_hint(self, method: str) -> float | None:
        ledger = self._ledger(method)
        now = self._clock()
        if ledger is None:
            until = self._suspended.get(method, 0.0)
            return until - now if until > now else None
        moment = ledger.next_change(now)
        return None if moment is None else max(0.0, moment - now)


class Limiter:
    """Paces requests and commands. One per client; the backend may be shared.

    The session talks to the limiter only: request tokens (:meth:`acquire`, :meth:`refund`,
    :meth:`drain`) and operating budget (:meth:`reserve`, :meth:`release`, :meth:`settle`,
    :meth:`suspend`, :meth:`wait_hint`).

    Args:
        backend: where the state lives.
        budget: the operating budget the backend enforces (used for suspension lengths).
        sleep: how to wait (injected in tests).
        clock: the monotonic clock of ``sleep`` (injected in tests).
    """

    def __init__(
        self,
        backend: LimiterBackend,
        budget: OperatingBudget | None,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self.backend = backend
        self.budget = budget
        self.sleep = sleep
        self.clock = clock
        #: Seconds spent waiting for request tokens, summed over every caller.
        self.waited = 0.0
        #: Whether the last :meth:`acquire` had to wait (the request bucket binds).
        self.last_waited = False
        #: Per budget key (a method, or ``batch``), the seconds of budget the portal last said
        #: were left.
        self.budget_left: dict[str, float] = {}
        #: Per budget key, the seconds the portal last said were spent in its window.
        self.budget_spent: dict[str, float] = {}
        self._reset_at: dict[str, float] = {}
        # When each key's last 429 suspension ends (this process's view).
        self._suspended: dict[str, float] = {}
        # Settlements under way that a cancelled caller left running (kept referenced).
        self._settling: set[asyncio.Future[None]] = set()

    @classmethod
    def in_memory(
        cls,
        rate_limit: RateLimit | None,
        budget: OperatingBudget | None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> Limiter:
        """A limiter whose state lives in this process."""
        return cls(MemoryBackend(rate_limit, budget, clock=clock), budget, sleep=sleep, clock=clock)

    # -- request tokens -----------------------------------------------------------------------

    async def acquire(self) -> None:
        """Wait for one request token (callers are served in the order they asked)."""
        wait = await self.backend.take_request()
        self.last_waited = wait > 0
        if wait <= 0:
            return
        try:
            await self.sleep(wait)
        except asyncio.CancelledError:
            await self.backend.refund_request()
            raise
        self.waited += wait

    async def refund(self) -> None:
        """Return a token taken by :meth:`acquire` that was not used for a request."""
        await self.backend.refund_request()

    async def drain(self) -> None:
        """The portal answered 503 ``QUERY_LIMIT_EXCEEDED``: its bucket is full, ours empty."""
        await self.backend.drain_requests()

    # -- operating budget -----------------------------------------------------------------------

    async def reserve(self, method: str, costs: Sequence[float]) -> int:
        """Reserve budget for as many of ``costs`` (in order) as fit now; return how many."""
        each = getattr(self.backend, "try_reserve_each", None)
        if each is not None:  # a backend in this process: one call for the lot
            return int(each(method, costs))
        granted = 0
        for cost in costs:
            if not await self.backend.try_reserve(method, cost):
                break
            granted += 1
        return granted

    async def reserve_on(self, keys: Sequence[str], costs: Sequence[float]) -> int:
        """Reserve each of ``costs`` (in order) on every one of ``keys``; return how many fit
        on all of them (the rest is reserved on none)."""
        granted = len(costs)
        held: list[str] = []
        for key in keys:
            got = await self.reserve(key, costs[:granted])
            if got < granted:
                for done in held:
                    for cost in costs[got:granted]:  # one by one, as they were reserved
                        await self.release(done, cost)
                granted = got
            held.append(key)
            if not granted:
                break
        return granted

    async def release(self, method: str, reserved: float) -> None:
        """Drop the reservation of a command that did not execute."""
        if reserved:
            await self.backend.release(method, reserved)

    async def release_each(self, releases: Sequence[tuple[str, float]]) -> None:
        """:meth:`release` each ``(method, reserved)``, in one call to a backend in this
        process."""
        each = getattr(self.backend, "release_each", None)
        if each is not None:
            each([(method, reserved) for method, reserved in releases if reserved])
            return
        for method, reserved in releases:
            await self.release(method, reserved)

    async def release_on(self, keys: Sequence[str], reserved: float) -> None:
        """:meth:`release` on each of ``keys``."""
        for key in keys:
            await self.release(key, reserved)

    async def settle_on(self, keys: Sequence[str], reserved: float, actual: float) -> None:
        """Book ``actual`` in place of ``reserved`` on each of ``keys``, with no figures."""
        for key in keys:
            await self.settle(key, reserved, actual, None, None)

    async def has_room(self, method: str, seconds: float = _PROBE) -> bool:
        """Whether ``method``'s budget has room for ``seconds`` now (nothing is reserved)."""
        if self.blocked(method):
            return False
        if not await self.backend.try_reserve(method, seconds):
            return False
        await self.backend.release(method, seconds)
        return True

    async def settle(
        self,
        method: str,
        reserved: float,
        actual: float,
        operating: float | None,
        reset_in: float | None,
        ended_ago: float = 0.0,
    ) -> None:
        """Book a command's execution time and the portal's ``time`` block.

        Args:
            method: the command's method.
            reserved: what was reserved for it.
            actual: its ``result_time`` duration (the reservation if unknown).
            operating: the portal's ``time.operating`` for the method, if reported.
            reset_in: seconds until ``time.operating_reset_at``, if reported.
            ended_ago: how long before now it at least ended.
        """
        await self.settle_each([(method, reserved, actual, operating, reset_in, ended_ago)])

    async def settle_each(self, bookings: Sequence[Booking]) -> None:
        """:meth:`settle` each of ``bookings`` (``(method, reserved, actual, operating,
        reset_in, ended_ago)``), in one call to a backend in this process."""
        for method, _, _, operating, reset_in, _ in bookings:
            if reset_in is not None:
                self._reset_at[method] = self.clock() + plausible_reset_in(reset_in, self.window_s)
            if operating is not None:
                self.budget_spent[method] = operating
                if self.budget is not None:
                    self.budget_left[method] = max(0.0, self.budget.limit_s - operating)
        each = getattr(self.backend, "settle_each", None)
        if each is not None:
            each(bookings)
            return
        # A backend that awaits (Redis): the bookings are settled in a task of their own that
        # a cancelled caller does not stop, or their reservations would stay held and their
        # execution unbooked.
        settling = asyncio.ensure_future(self._settle_all(list(bookings)))
        self._settling.add(settling)
        settling.add_done_callback(self._settling.discard)
        await asyncio.shield(settling)

    async def _settle_all(self, bookings: Sequence[Booking]) -> None:
        for booking in bookings:
            await self.backend.settle(*booking)

    async def suspend(self, method: str) -> None:
        """429 for ``method``: admit none of it until the portal's oldest bucket drops out."""
        reset_at = self._reset_at.get(method)
        seconds = reset_at - self.clock() if reset_at is not None else 0.0
        self.budget_left[method] = 0.0
        # Never longer than one window: the figure came from a reply
        # (docs/portal.md#operating-time-per-method).
        seconds = plausible_reset_in(max(seconds, self.bucket_seconds), self.window_s)
        self._suspended[method] = self.clock() + seconds
        await self.backend.suspend(method, seconds)

    def blocked(self, method: str) -> bool:
        """Whether a 429 for ``method`` suspends it now.

        A method whose own budget is spent (by direct calls) is refused inside a ``batch`` as
        well (docs/portal.md#how-batch-is-billed), even when the batch is booked to ``batch``.
        """
        until = self._suspended.get(method)
        if until is None:
            return False
        if self.clock() >= until:
            del self._suspended[method]
            return False
        return True

    async def wait_hint(self, method: str) -> float | None:
        """Seconds until ``method``'s headroom grows by itself, if it will."""
        return await self.backend.wait_hint(method)

    @property
    def window_s(self) -> float:
        """The operating budget's window (the documented 10 minutes without a budget)."""
        return (self.budget or OperatingBudget()).window_s

    @property
    def bucket_seconds(self) -> float:
        """The length of one of the portal's budget buckets (the shortest useful suspension)."""
        if self.budget is None:
            return 1.0
        return self.budget.window_s / self.budget.buckets
