"""Carrying out retry decisions for auto-batched commands: requeue now, or after a wait."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from bitrix_docgen_async._commands import ClientStats, Command
from bitrix_docgen_async._sender import Again, fail
from bitrix_docgen_async.core.retry import Action, RetryPolicy, decide
from bitrix_docgen_async.errors import ClientStateError
from bitrix_docgen_async.limiter import Limiter, Sleep

__all__ = ["Retries", "wait_to_retry"]

log = logging.getLogger("bitrix_docgen_async.session")

Push = Callable[..., None]


class Retries:
    """Puts commands back in the queue as :func:`core.retry.decide` said; owns the waits.

    Args:
        stats: counts each command sent again.
        sleep: the injected sleep (waits run on the client's clock).
        push: queues commands again at the front of their keys (``push(commands, front=True)``).
    """

    def __init__(self, stats: ClientStats, sleep: Sleep, push: Push) -> None:
        self._stats = stats
        self._sleep = sleep
        self._push = push
        self._timers: set[asyncio.Task[None]] = set()

    def carry_out(self, again: Sequence[Again], *, closed: bool) -> None:
        """Requeue refusals at once; send the rest again after the longest decided wait."""
        if not again:
            return
        self._stats.retries += len(again)
        now: list[Command] = []
        later: list[Command] = []
        for item in again:
            item.command.started = False
            if item.decision.action is Action.REQUEUE:
                item.command.refusals += 1
                now.append(item.command)
            else:
                item.command.attempts += 1
                later.append(item.command)
        if closed:
            for command in now + later:
                fail(command, ClientStateError("the client was closed before a retry"))
            return
        if now:
            self._push(now, front=True)
        if later:
            delay = max(i.decision.delay for i in again if i.decision.action is Action.RETRY)
            timer = asyncio.get_running_loop().create_task(self._after(delay, later))
            self._timers.add(timer)
            timer.add_done_callback(self._timers.discard)

    async def _after(self, delay: float, commands: list[Command]) -> None:
        try:
            await self._sleep(delay)
        except asyncio.CancelledError:
            for command in commands:
                fail(command, ClientStateError("the client was closed before a retry"))
            raise
        self._push(commands, front=True)

    async def close(self) -> None:
        """Cancel every wait; its commands fail with :class:`ClientStateError`."""
        for timer in self._timers:
            timer.cancel()
        if self._timers:
            await asyncio.wait(set(self._timers))


async def wait_to_retry(
    error: BaseException,
    *,
    what: str,
    idempotent: bool,
    attempt: int,
    started: float,
    policy: RetryPolicy,
    limiter: Limiter,
) -> bool:
    """The retry decision for loops outside the session (downloads, polling, bulk).

    Decides with :func:`bitrix_docgen_async.core.retry.decide`, logs the decision at DEBUG and,
    when it says to try again, waits the decided delay on the limiter's (injected) sleep.

    Args:
        error: the failure.
        what: names the operation in the log (never a URL).
        idempotent: the operation may run twice with the effect of once.
        attempt: tries made so far after failures (0 after the first failure).
        started: the limiter clock's reading when the operation was first tried.
        policy: the client's :class:`RetryPolicy`.
        limiter: the client's limiter (its clock and sleep).

    Returns:
        True after the wait (try again), False when the error is final (raise it).
    """
    decision = decide(
        error,
        idempotent=idempotent,
        attempt=attempt,
        refusals=attempt,
        elapsed=limiter.clock() - started,
        policy=policy,
    )
    log.debug(
        "%s: %s -> %s (%s)", what, type(error).__name__, decision.action.value, decision.reason
    )
    if decision.action not in (Action.RETRY, Action.REQUEUE):
        return False
    if decision.delay > 0:
        await limiter.sleep(decision.delay)
    return True
