"""The session: queues concurrent calls and sends them as ``batch`` requests, paced and retried.

Each call waits in its billing key's queue. One flusher task takes a request token, asks the
planner (``core/planner.py``) which commands go next, reserves their budget with the limiter and
hands them to the sender (``_sender.py``, which explicit batches use too). A spent budget holds
back only its own key. A call made while nothing is queued or in flight goes out on the next
loop turn; calls arriving while a request is in flight linger up to ``linger`` seconds to share
a batch. Closing fails queued calls with :class:`ClientStateError` unsent. No wait relies on
``asyncio.wait_for``: on Python 3.11 it can swallow a cancel landing as the awaited event fires,
which once left ``__aexit__`` waiting forever for a flusher that kept running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from bitrix_docgen_async._commands import (
    UNSET,
    ClientStats,
    Command,
    CommandQueue,
    CommandResult,
    Costs,
    Unset,
    check_number,
    check_options,
    check_routing,
)
from bitrix_docgen_async._retries import Retries
from bitrix_docgen_async._sender import Sender, fail
from bitrix_docgen_async.auth import Auth
from bitrix_docgen_async.core.billing import BATCH_KEY
from bitrix_docgen_async.core.encoding import build_command
from bitrix_docgen_async.core.methods import MethodInfo, method_info, normalize_method
from bitrix_docgen_async.core.params import normalize_params
from bitrix_docgen_async.core.planner import MAX_BATCH, Head, Route, plan, route
from bitrix_docgen_async.core.retry import Jitter, RetryPolicy
from bitrix_docgen_async.errors import BitrixError, ClientStateError, RateLimitedError
from bitrix_docgen_async.limiter import Clock, Limiter
from bitrix_docgen_async.transport import Transport

__all__ = ["MAX_BATCH", "UNSET", "ClientStats", "CommandResult", "Session", "Unset"]
__all__ += ["check_options", "check_routing"]

log = logging.getLogger("bitrix_docgen_async.session")

_CLOSED = "the client was closed before this call was sent"
#: Longest idle wait when nothing says when things change (a poll, not a bound on waiting).
_IDLE = 1.0
#: How many times its prior an unmeasured method that needs no probe might still cost.
_PRIOR_ERROR = 3.0
#: Shortest wait, so that the flusher always yields to the loop.
_TICK = 0.001


class Session:
    """Batches, paces and retries calls over one transport. Owned by ``DocgenClient``."""

    def __init__(
        self,
        transport: Transport,
        auth: Auth,
        limiter: Limiter,
        *,
        linger: float = 0.005,
        batch_time_target: float = 20.0,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen
        queue_timeout: float | None = None,
        wall_clock: Clock = time.time,
        jitter: Jitter | None = None,
        budget_routing: Literal["auto", "off"] = "auto",
    ) -> None:
        check_options(linger, batch_time_target, queue_timeout)
        check_routing(budget_routing)
        self.budget_routing = budget_routing
        self.transport = transport
        self.auth = auth
        self.limiter = limiter
        self.linger = linger
        self.batch_time_target = batch_time_target
        self.retry = retry
        self.queue_timeout = queue_timeout
        self.stats = ClientStats()
        self.costs = Costs(self._prior)
        self.sender = Sender(
            transport, auth, limiter, self.stats, self.costs, retry, wall_clock=wall_clock,
            jitter=jitter,
        )  # fmt: skip
        self.queue = CommandQueue()
        # Unmeasured methods in flight whose prior may be too low (MethodInfo.measure_first):
        # one batch at a time until one has been measured.
        self._learning: set[str] = set()
        self._changed = asyncio.Event()
        self._full = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._sending = 0  # requests in flight, counted down inside the task (no callback lag)
        self._retries = Retries(self.stats, limiter.sleep, self._push)
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the flusher task (inside a running loop)."""
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._run(), name="docgen")

    async def close(self) -> None:
        """Fail what is queued (unsent), let requests in flight finish, stop every task."""
        if self._closed:
            return
        self._closed = True
        self._fail_queued(ClientStateError(_CLOSED))
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.wait({self._flusher})
            if not self._flusher.cancelled() and (error := self._flusher.exception()):
                log.error("the flusher failed", exc_info=error)
        if self._in_flight:
            await asyncio.wait(set(self._in_flight))
        await self._retries.close()
        self._fail_queued(ClientStateError(_CLOSED))  # anything requeued meanwhile

    # -- calls ------------------------------------------------------------------------------

    def prepare(
        self, method: str, params: Mapping[str, Any] | None
    ) -> tuple[str, dict[str, Any], str]:
        """Validate a call before anything is queued: (method, params, batch command string)."""
        name = normalize_method(method)
        if name == "batch":
            raise ValueError("send batches with client.batch(), not call('batch')")
        # Normalised once, before anything is queued: what cannot be encoded is refused here
        # (naming the argument), and a lone and a batched call then send the same thing.
        plain = normalize_params(params)
        return name, plain, build_command(name, plain)

    def command(
        self, method: str, params: Mapping[str, Any] | None, *, idempotent: bool | None = None
    ) -> Command:
        """A validated command with its future (not queued)."""
        if self._closed or self._flusher is None:
            raise ClientStateError("the client is not open: use it inside 'async with'")
        name, plain, encoded = self.prepare(method, params)
        info = method_info(name)
        safe = info.idempotent if idempotent is None else idempotent
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        return Command(
            name, plain, encoded, future, safe, info.batchable, since=self.limiter.clock()
        )

    async def call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
        queue_timeout: float | Unset | None = UNSET,
    ) -> CommandResult:
        """Queue one call and wait for its own result.

        Args:
            method: the REST method, e.g. ``crm.documentgenerator.numerator.get``.
            params: its parameters.
            idempotent: whether it may be sent again after an ambiguous failure; by default
                known reads are and everything else is not.
            queue_timeout: seconds it may wait to start (``UNSET``: the session's default).

        Raises:
            RateLimitedError: it could not start within ``queue_timeout`` (never sent).
        """
        command = self.command(method, params, idempotent=idempotent)
        limit = self.queue_timeout if queue_timeout is UNSET else queue_timeout
        if limit is not None:
            check_number(limit, "queue_timeout")
            command.deadline = command.since + float(limit)
        self._push([command])
        return await command.future

    def flush(self) -> None:
        """Send what is queued now instead of waiting out the linger."""
        self._full.set()
        self._changed.set()

    def _push(self, commands: Sequence[Command], *, front: bool = False) -> None:
        for command in reversed(commands) if front else commands:
            self.queue.push(command, front=front)
        if len(self.queue) >= MAX_BATCH:
            self._full.set()
        self._changed.set()

    def _fail_queued(self, error: BaseException) -> None:
        for command in self.queue.drain():
            fail(command, error)

    # -- the flusher ------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closed:
            self._changed.clear()
            try:
                if self.queue.next_deadline() is not None:
                    await self._expire()
                self.stats.queue_depth = len(self.queue)
                if not self.queue:
                    await self._changed.wait()
                    continue
                if self.linger > 0 and self._sending and len(self.queue) < MAX_BATCH:
                    await self._pause(self.linger, self._full)  # share a batch with others
                self._full.clear()
                await self.limiter.acquire()
                if self.queue.next_deadline() is not None:
                    await self._expire()  # deadlines that passed while waiting for the token
                batch, spent = await self._compose()
            except Exception as exc:
                # The limiter cannot pace (a shared backend is gone): fail what waits rather
                # than leave it hanging; later calls try the limiter again.
                if not isinstance(exc, BitrixError):
                    log.exception("unexpected error in the flusher")
                self._fail_queued(exc)
                continue
            self.stats.limiter_wait_s = self.limiter.waited + self.stats.budget_wait_s
            if batch:
                self._dispatch(batch)
                continue
            await self.limiter.refund()
            await self._idle(spent)

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

    async def _compose(self) -> tuple[list[Command], list[str]]:
        """Take the commands of one request; with none, the keys whose budget is spent."""
        batch: list[Command] = []
        try:
            return await self._fill(batch)
        except BaseException:
            for command in batch:  # cancelled by close() (or a backend failed) while held
                fail(command, ClientStateError(_CLOSED))
                await self.limiter.release_on(command.budget_keys, command.reserved)
            raise

    async def _fill(self, batch: list[Command]) -> tuple[list[Command], list[str]]:
        skip = {m for m in self._learning if m not in self.costs}
        spent: list[str] = []
        expected = 0.0
        while True:
            refused = len(spent)
            heads = self.queue.heads(self.costs.estimate, MAX_BATCH)
            if not batch:
                heads = await self._route(heads)
            target = self.batch_time_target
            takes = plan(heads, skip=skip, taken=len(batch), expected=expected, time_target=target)
            batchable = {head.key: head.batchable for head in heads}
            direct = {head.key: head.direct for head in heads}
            for take in takes:
                skip.add(take.key)
                keys = await self._budgets_for(take.key, batchable=batchable[take.key])
                if direct[take.key] and keys:
                    keys = (take.key,)  # routed direct: billed to its own method
                if not keys:
                    spent.append(take.key)
                    continue
                granted = await self.limiter.reserve_on(keys, take.costs)
                if granted < take.count:
                    spent.extend(keys)
                taken = self.queue.pop(take.key, granted)
                for command, cost in zip(taken, take.costs, strict=False):
                    command.reserved = cost
                    command.budgets = keys
                    command.in_batch = False
                    expected += cost
                batch.extend(taken)
                if len(taken) < granted:  # callers gave up during the reservation
                    for cost in take.costs[len(taken) : granted]:
                        await self.limiter.release_on(keys, cost)
            # Plan again only if a key was refused: its room may go to the other keys.
            if len(spent) == refused or (batch and not batch[0].batchable):
                if len(batch) == 1 and batch[0].batchable:
                    await self._alone(batch[0])
                return batch, spent

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
                    head.key,
                    separate_budgets=True,
                    batch_room=await self.limiter.has_room(BATCH_KEY, cost),
                    own_room=await self.limiter.has_room(head.key, 2 * cost),
                    tokens_free=not self.limiter.last_waited,
                )
                if choice is Route.DIRECT:
                    head = attrs.evolve(head, direct=True)
            routed.append(head)
        return routed

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

    def _dispatch(self, batch: list[Command]) -> None:
        self._learning.update(
            c.method for c in batch if c.method not in self.costs and self._probe_first(c.method)
        )
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending += 1
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _send(self, batch: list[Command]) -> None:
        # Whoever gave up before this point is never sent; from here on, a request has started.
        live = [c for c in batch if c.live]
        dead = [c for c in batch if not c.live]
        for command in live:
            command.started = True
        try:
            if live:
                self._retries.carry_out(await self.sender.send(live), closed=self._closed)
            else:
                await self.limiter.refund()
        except Exception as exc:  # a bug must not leave awaiters hanging forever
            log.exception("unexpected error while sending %d command(s)", len(live))
            for command in live:
                fail(command, exc)
                # It may have run: book the estimate rather than leak the reservation.
                await self.limiter.settle_on(
                    command.budget_keys, command.reserved, command.reserved
                )
                command.reserved = 0.0
        finally:
            for command in dead:
                await self.limiter.release_on(command.budget_keys, command.reserved)
                command.reserved = 0.0
            self._learning.difference_update(c.method for c in batch)
            self._sending -= 1
            if not self._sending:  # nothing in flight: lingering calls need not wait longer
                self._full.set()
            self._changed.set()

    # -- explicit batches -------------------------------------------------------------------

    async def send_batch(self, commands: Sequence[Command], *, halt: bool) -> None:
        """Send an explicit batch as one request, through the same sender, budget and retries."""
        if self._closed or self._flusher is None:
            raise ClientStateError("the client is not open: use it inside 'async with'")
        await self.sender.send_explicit(commands, halt=halt, is_open=lambda: not self._closed)
