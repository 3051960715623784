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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from bitrix_docgen_async._budgeting import BudgetPlanning
from bitrix_docgen_async._commands import (
    UNSET,
    ClientStats,
    Command,
    CommandQueue,
    CommandResult,
    Costs,
    Group,
    Unset,
    check_number,
    check_options,
    check_routing,
    prepare_call,
    prepare_method,
    prepare_params,
)
from bitrix_docgen_async._retries import Retries
from bitrix_docgen_async._sender import Sender, fail
from bitrix_docgen_async.auth import Auth
from bitrix_docgen_async.core.methods import method_info
from bitrix_docgen_async.core.planner import MAX_BATCH, plan
from bitrix_docgen_async.core.retry import Jitter, RetryPolicy
from bitrix_docgen_async.errors import BitrixError, ClientStateError
from bitrix_docgen_async.limiter import Clock, Limiter
from bitrix_docgen_async.transport import Transport

__all__ = ["MAX_BATCH", "UNSET", "ClientStats", "CommandResult", "Session", "Unset"]
__all__ += ["check_options", "check_routing"]

log = logging.getLogger("bitrix_docgen_async.session")

_CLOSED = "the client was closed before this call was sent"


class Session(BudgetPlanning):
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

    #: Validate a call before anything is queued: (method, params, batch command string).
    prepare = staticmethod(prepare_call)

    def command(
        self, method: str, params: Mapping[str, Any] | None, *, idempotent: bool | None = None
    ) -> Command:
        """A validated command with its own future; not queued."""
        future = asyncio.get_running_loop().create_future()
        return self._build(method, (params,), idempotent, future)[0]

    def _build(
        self,
        method: str,
        params: Sequence[Mapping[str, Any] | None],
        idempotent: bool | None,
        future: asyncio.Future[Any],
    ) -> list[Command]:
        """Validated commands of ``method``, one per item of ``params``, sharing ``future``;
        the method's name, rules and the moment are read once for all of them."""
        self._check_open()
        name = prepare_method(method)
        info = method_info(name)
        safe = info.idempotent if idempotent is None else idempotent
        batchable, since = info.batchable, self.limiter.clock()
        commands = []
        for one in params:
            plain, encoded = prepare_params(name, one)
            commands.append(Command(name, plain, encoded, future, safe, batchable, since=since))
        return commands

    def _check_open(self) -> None:
        if self._closed or self._flusher is None:
            raise ClientStateError("the client is not open: use it inside 'async with'")

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
        self._limit([command], queue_timeout)
        self._push([command])
        result: CommandResult = await command.future
        return result

    def _limit(self, commands: Sequence[Command], queue_timeout: float | Unset | None) -> None:
        limit = self.queue_timeout if queue_timeout is UNSET else queue_timeout
        if limit is not None:
            check_number(limit, "queue_timeout")
            for command in commands:
                command.deadline = command.since + float(limit)

    async def call_many(
        self,
        method: str,
        params: Sequence[Mapping[str, Any] | None],
        *,
        idempotent: bool | None = None,
        queue_timeout: float | Unset | None = UNSET,
        read: Callable[[Any], Any] | None = None,
    ) -> list[Any]:
        """Like one :meth:`call` per item of ``params``, awaited as one: each call's result
        (``read(result)`` as it arrives, with ``read``) or the exception it failed with, in
        order (one future for the lot, no task per call)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        commands = self._build(method, params, idempotent, future)
        self._limit(commands, queue_timeout)
        Group.adopt(future, commands, read)
        self.queue.push_many(commands)
        self._queued()
        return await future if commands else []

    def flush(self) -> None:
        """Send what is queued now instead of waiting out the linger."""
        self._full.set()
        self._changed.set()

    def _push(self, commands: Sequence[Command], *, front: bool = False) -> None:
        for command in reversed(commands) if front else commands:
            self.queue.push(command, front=front)
        self._queued()

    def _queued(self) -> None:
        """Wake the flusher for what was just queued (at once when a batch is full)."""
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
            target = self._time_target(heads)
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

    def _dispatch(self, batch: list[Command]) -> None:
        methods = {c.method for c in batch}  # (mostly one: the planner takes keys in runs)
        self._learning.update(m for m in methods if m not in self.costs and self._probe_first(m))
        task = asyncio.get_running_loop().create_task(self._send(batch, methods))
        self._sending += 1
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _send(self, batch: list[Command], methods: set[str]) -> None:
        # Whoever gave up before this point is never sent; from here on, a request has started.
        live: list[Command] = []
        dead: list[Command] = []
        for command in batch:
            if command.live:
                command.started = True
                live.append(command)
            else:
                dead.append(command)
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
            self._learning.difference_update(methods)
            self._sending -= 1
            if not self._sending:  # nothing in flight: lingering calls need not wait longer
                self._full.set()
            self._changed.set()

    # -- explicit batches -------------------------------------------------------------------

    async def send_batch(self, commands: Sequence[Command], *, halt: bool) -> None:
        """Send an explicit batch as one request, through the same sender, budget and retries."""
        self._check_open()
        await self.sender.send_explicit(commands, halt=halt, is_open=lambda: not self._closed)
