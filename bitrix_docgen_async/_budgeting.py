"""How the session books, routes and waits for operating budget (a part of :class:`Session`).

Which budget keys a command is booked to follows what the portal bills
(docs/portal.md#how-batch-is-billed): a direct call to its method, a ``batch`` request to
``batch`` once the portal's figures have shown it, to both until then. With
``budget_routing="auto"`` a command that ``batch``'s budget has no room for goes direct while
its own budget has room. An unmeasured
method is planned with its documented prior, and probed with one batch first when that prior may
be too low for the batch time target.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import attrs

from bitrix_docgen_async._commands import ClientStats, Command, CommandQueue, Costs
from bitrix_docgen_async._sender import Sender, fail
from bitrix_docgen_async.core.billing import BATCH_KEY
from bitrix_docgen_async.core.methods import MethodInfo, method_info
from bitrix_docgen_async.core.planner import HEAVY_WRITES, MAX_BATCH, Head, Route, route
from bitrix_docgen_async.errors import RateLimitedError
from bitrix_docgen_async.limiter import Limiter

__all__ = ["BudgetPlanning"]

#: Longest idle wait when nothing says when things change (a poll, not a bound on waiting).
_IDLE = 1.0
#: Shortest wait, so that the flusher always yields to the loop.
_TICK = 0.001
#: How many times its prior an unmeasured method that needs no probe might still cost.
_PRIOR_ERROR = 3.0
#: Expected seconds a batch of heavy writes may run before any ``batch`` reply has shown how
#: the portal bills: the warm-up that learns the model is kept short, since until it is known
#: such a batch holds both budgets and routing cannot start.
_WARM_UP_S = 1.0


class BudgetPlanning:
    """Budget keys, routing, priors and the waits for budget; mixed into the session, whose
    state it reads."""

    sender: Sender
    limiter: Limiter
    budget_routing: str
    batch_time_target: float
    queue: CommandQueue
    stats: ClientStats
    costs: Costs
    _changed: asyncio.Event

    async def _pause(self, seconds: float, event: asyncio.Event) -> None:
        """Wait until ``event`` is set or ``seconds`` pass on the injected clock."""
        if event.is_set():
            return
        waiter = asyncio.ensure_future(event.wait())
        timer = asyncio.ensure_future(self.limiter.sleep(max(seconds, _TICK)))
        try:
            await asyncio.wait((waiter, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            timer.cancel()

    async def _idle(self, spent: Sequence[str]) -> None:
        """Nothing could be sent: wait for a change, a budget to free, or a deadline."""
        hints = [await self.limiter.wait_hint(key) for key in spent]
        waits = [h for h in hints if h is not None] + [_IDLE]
        deadline = self.queue.next_deadline()
        started = self.limiter.clock()
        if deadline is not None:
            waits.append(deadline - started)
        await self._pause(min(waits), self._changed)
        if spent:
            self.stats.budget_wait_s += max(0.0, self.limiter.clock() - started)
            self.stats.limiter_wait_s = self.limiter.waited + self.stats.budget_wait_s

    async def _expire(self) -> None:
        """Fail the queued calls whose ``queue_timeout`` has passed; they are never sent."""
        for command in list(self.queue.expired(self.limiter.clock())):
            hints = [await self.limiter.wait_hint(key) for key in (BATCH_KEY, command.method)]
            hint = max((h for h in hints if h is not None), default=None)
            retry_after = hint if hint is not None and hint > 0 else _IDLE
            fail(
                command,
                RateLimitedError(
                    "QUEUE_TIMEOUT",
                    "the call could not start within its queue_timeout; it was not sent",
                    method=command.method,
                    retry_after=retry_after,
                ),
            )

    async def _route(self, heads: list[Head]) -> list[Head]:
        """Mark the heads that go direct now (:func:`~bitrix_docgen_async.core.planner.route`).

        Only with ``budget_routing="auto"`` and once the portal's figures have shown that a
        ``batch`` is billed apart from direct calls (docs/portal.md#how-batch-is-billed).
        """
        billing = self.sender.billing
        if self.budget_routing != "auto" or not billing.separate_budgets:
            return heads
        routed: list[Head] = []
        for head in heads:
            if head.batchable and head.costs and not self.limiter.blocked(head.key):
                cost = head.costs[0]
                # A margin of one more command: the portal refuses a method inside batches
                # too once its own sum reaches the limit, so direct calls never take it there.
                choice = route(
                    separate_budgets=True,
                    batch_room=await self.limiter.has_room(BATCH_KEY, cost),
                    own_room=await self.limiter.has_room(head.key, 2 * cost),
                    tokens_free=not self.limiter.last_waited,
                )
                if choice is Route.DIRECT:
                    head = attrs.evolve(head, direct=True)
            routed.append(head)
        return routed

    def _time_target(self, heads: Sequence[Head]) -> float:
        """The expected execution a batch may carry: the session's target, or, before any
        ``batch`` reply has shown how the portal bills (docs/portal.md#how-batch-is-billed),
        at most ``_WARM_UP_S`` when measured heavy writes wait and routing may follow (an
        unmeasured one is probed as :meth:`_probe_first` says): such a batch is
        held against both budgets until its reply, and the sooner that reply comes, the sooner
        both budgets are spent apart."""
        target = self.batch_time_target
        if (
            self.budget_routing == "auto"
            and self.stats.batches == 0
            and any(head.key in HEAVY_WRITES and head.key in self.costs for head in heads)
        ):
            return min(target, _WARM_UP_S)
        return target

    async def _alone(self, command: Command) -> None:
        """A batchable command that goes alone: a direct call, billed to its own method.

        It was booked as a batched command; the booking moves to its method when that budget
        has room, and otherwise it is sent as a ``batch`` of one, as it was booked.
        """
        method = command.method
        keys = command.budget_keys
        if keys == (method,):
            return
        if method not in keys and not await self.limiter.reserve_on((method,), (command.reserved,)):
            command.in_batch = True
            return
        await self.limiter.release_on([k for k in keys if k != method], command.reserved)
        command.budgets = (method,)

    async def _budgets_for(self, method: str, *, batchable: bool) -> tuple[str, ...]:
        """The budget keys a command of ``method`` is booked to; empty if it may not go now.

        A command that goes alone (not batchable) is a direct call, billed to its method. A
        batched one is booked as the portal's figures showed it bills a ``batch``
        (docs/portal.md#how-batch-is-billed): to ``batch``, to its method, or to both until
        they have shown which. A method whose own budget is spent is refused inside a batch
        as well, so it waits even when booked to ``batch``.
        """
        if self.limiter.blocked(method):
            return ()
        if not batchable:
            return (method,)
        keys = self.sender.billing.budgets_in_batch(method)
        if method not in keys and not await self.limiter.has_room(method):
            return ()
        return keys

    def _probe_first(self, method: str) -> bool:
        """Whether an unmeasured ``method`` sends one batch and waits for its timing.

        The wait protects the batch time target (and with it the portal's 60 s cut-off,
        docs/portal.md#request-time-out) from a prior that is too low. A prior that is an upper
        estimate (MethodInfo.measure_first false) needs no wait when even a full batch of it,
        ``_PRIOR_ERROR`` times costlier than assumed, stays within the target: then the rest of
        its queue goes on at once instead of a whole round later.
        """
        info = method_info(method)
        return info.measure_first or self._risky(info)

    def _risky(self, info: MethodInfo) -> bool:
        return MAX_BATCH * info.prior_cost * _PRIOR_ERROR > self.batch_time_target

    def _prior(self, method: str) -> float:
        """The cost to plan an unmeasured method with: its prior, or, when a low prior could
        push a batch past the target (a short target), the most it might cost, so that its
        probe batch stays within the target."""
        info = method_info(method)
        if not info.measure_first and self._risky(info):
            return info.prior_cost * _PRIOR_ERROR
        return info.prior_cost
