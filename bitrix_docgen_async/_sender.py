"""The one send path: one HTTP request for some commands, and what each outcome does.

Auto-batched calls and explicit batches both come through :meth:`Sender.send`, so both reserve
(before), settle and suspend (after) the operating budget the same way. Every failure goes
through :func:`bitrix_docgen_async.core.retry.decide`; the decision is logged at DEBUG here and
carried out by the caller (requeue, retry after a wait) or here (fail).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from bitrix_docgen_async._commands import ClientStats, Command, CommandResult, Costs
from bitrix_docgen_async.auth import Auth
from bitrix_docgen_async.core.billing import BATCH_KEY, BillingDetector
from bitrix_docgen_async.core.encoding import encode_form_body
from bitrix_docgen_async.core.envelope import (
    Envelope,
    TimeInfo,
    parse_response,
    split_batch,
    time_figure,
)
from bitrix_docgen_async.core.ratelimit import MAX_CALL_S, plausible_duration
from bitrix_docgen_async.core.retry import (
    Action,
    Decision,
    Jitter,
    Outcome,
    RetryPolicy,
    classify,
    decide,
)
from bitrix_docgen_async.errors import (
    BitrixError,
    ClientStateError,
    CommandSkippedError,
    ConnectError,
    OperationTimeLimitError,
    OutcomeUnknownError,
    QueryLimitExceededError,
    ResponseError,
    TokenExpiredError,
)
from bitrix_docgen_async.limiter import Booking, Clock, Limiter
from bitrix_docgen_async.tracing import NO_TRACER, Tracer
from bitrix_docgen_async.transport import Transport, origin_of

__all__ = ["Again", "Sender"]

log = logging.getLogger("bitrix_docgen_async.session")


@attrs.frozen
class Again:
    """A command to send again, as decided (``REQUEUE`` or ``RETRY`` after ``delay``)."""

    command: Command
    decision: Decision
    error: BaseException


class Sender:
    """Sends commands and settles their outcomes. Shared by the flusher and explicit batches."""

    def __init__(
        self,
        transport: Transport,
        auth: Auth,
        limiter: Limiter,
        stats: ClientStats,
        costs: Costs,
        retry: RetryPolicy,
        *,
        wall_clock: Clock = time.time,
        jitter: Jitter | None = None,
    ) -> None:
        self.transport = transport
        self.auth = auth
        self.limiter = limiter
        self.stats = stats
        self.costs = costs
        self.retry = retry
        self._wall = wall_clock
        self._jitter = jitter
        #: Tracing hooks around every HTTP request (the client sets its own).
        self.tracer: Tracer = NO_TRACER
        #: What the portal's ``time`` figures showed about how a ``batch`` is billed.
        self.billing = BillingDetector()

    async def send(self, commands: Sequence[Command], *, halt: bool = False) -> list[Again]:
        """Send ``commands`` in one request (a direct call when one auto-batched command).

        Each command's future gets its result or final error; the commands to send again are
        returned with the decision. The caller marked every command ``started``.
        """
        now = self.limiter.clock()
        for command in commands:
            if command.first_sent is None:
                command.first_sent = now
        stale = self.auth.token
        if len(commands) == 1 and not commands[0].key and not commands[0].in_batch:
            command = commands[0]
            payload = {**command.params, **self.auth.body_params()}
            try:
                envelope = await self._request(command.method, payload, stale, commands)
            except BitrixError as exc:
                return await self._failed(commands, exc)
            self.stats.commands += 1
            self.stats.direct_commands += 1
            info = envelope.time  # a direct call's figures are its method's budget's view
            actual = plausible_duration(info.duration) if info is not None else None
            await self._complete(command, _result(envelope, info), actual, info)
            return []
        keys = [c.key or f"c{i}" for i, c in enumerate(commands)]
        pairs = list(zip(keys, commands, strict=True))
        payload = {
            "halt": 1 if halt else 0,
            "cmd": {k: c.encoded for k, c in pairs},
            **self.auth.body_params(),
        }
        try:
            envelope = await self._request("batch", payload, stale, commands)
            reply = split_batch(
                envelope.result,
                {k: c.method for k, c in pairs},
                secrets=self.auth.secrets(),
                request_id=envelope.request_id,
            )
        except BitrixError as exc:
            return await self._failed(commands, exc)
        self.stats.commands += len(commands)
        self.stats.batched_commands += len(commands)
        outer = envelope.time
        times = reply.raw_times  # read figure by figure: no TimeInfo per command
        self.billing.observe(
            outer.operating if outer is not None else None,
            (time_figure(t, "operating") for t in times.values()),
        )
        self.stats.billing_model = self.billing.detected
        # A command's own figures count only when the portal bills commands to their methods
        # (docs/portal.md#how-batch-is-billed); under ``batch`` billing they are the request's
        # running sum, never a budget's view.
        own = self.billing.detected == "method"
        durations, ended_ago = _timings(times, keys)
        again: list[Again] = []
        suspended: set[str] = set()
        bookings: list[Booking] = []  # the successes' settlements, one call for the batch
        releases: list[tuple[str, float]] = []  # holds on budgets the portal did not bill
        billed: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}
        results, errors, totals, nexts = reply.results, reply.errors, reply.totals, reply.nexts
        try:
            for index, (key, command) in enumerate(pairs):
                error: BitrixError | None = errors.get(key) if errors else None
                if error is None and key in results:
                    timing = times.get(key)
                    self._book(
                        command,
                        durations[index],
                        timing if own else None,
                        ended_ago[index],
                        bookings,
                        self._billed_keys(command, billed, releases),
                    )
                    command.deliver(results[key], totals.get(key), nexts.get(key), timing)
                    continue
                if isinstance(error, OperationTimeLimitError):
                    self.stats.rate_limited += 1
                    if command.method not in suspended:
                        suspended.add(command.method)
                        await self.limiter.suspend(command.method)
                if error is None:
                    error = (
                        CommandSkippedError(f"{command.method}: not run, the batch halted")
                        if halt
                        else ResponseError(
                            "the batch reply has no entry for this command", status=200
                        )
                    )
                again.extend(await self._failed([command], error))
        finally:
            # Even when the caller is cancelled meanwhile: these results were handed over and
            # their reservations cleared, so their execution must be booked.
            await self.limiter.settle_each(bookings)
            if releases:
                await self.limiter.release_each(releases)
        if outer is not None and any(BATCH_KEY in c.budget_keys for c in commands):
            # The whole request is billed to ``batch`` (docs/portal.md#how-batch-is-billed):
            # its outer ``time`` is that budget's view; the commands were booked one by one.
            await self.limiter.settle(
                BATCH_KEY, 0.0, 0.0, outer.operating, self._reset_in(outer), 0.0
            )
        return again

    async def _request(
        self, method: str, payload: dict[str, Any], stale: str | None, commands: Sequence[Command]
    ) -> Envelope:
        """One HTTP request; a refusal is dealt with (bucket drained, token refreshed, method
        suspended) and raised."""
        # One wire form: the same PHP-style encoder as a batch command's query (core.params
        # normalised the parameters before they were queued).
        body = encode_form_body(payload)
        url = self.auth.url_for(method)
        response = await self.tracer.send(
            method, payload, lambda: self.transport.post_form(url, body)
        )
        self.stats.http_requests += 1
        if method == "batch":
            self.stats.batches += 1
        origin = origin_of(response.url)
        if origin != self.auth.origin:
            self.auth.rebase(origin)
        try:
            return parse_response(
                response.status,
                response.body,
                method=method,
                headers=response.headers,
                secrets=self.auth.secrets(),
            )
        except QueryLimitExceededError:
            # The portal's bucket is full: ours must be empty too.
            self.stats.rate_limited += 1
            await self.limiter.drain()
            raise
        except TokenExpiredError:
            await self.auth.refresh(self.transport, stale)  # an OAuthError is final
            raise
        except OperationTimeLimitError:
            # A 429 on a whole request is the budget it is billed to: ``batch`` for a batch
            # billed whole, each inner method when the portal bills commands to their
            # methods, the method for a direct call (docs/portal.md#how-batch-is-billed).
            self.stats.rate_limited += 1
            if method == "batch":
                keys = {key for c in commands for key in c.budget_keys}
            else:
                keys = {method}
            for name in sorted(keys):
                await self.limiter.suspend(name)
            raise

    async def _complete(
        self,
        command: Command,
        result: CommandResult,
        actual: float | None,
        figures: TimeInfo | Mapping[str, Any] | None,
    ) -> None:
        """Book one direct call's success (:meth:`_book`), hand it over and settle it."""
        bookings: list[Booking] = []
        self._book(command, actual, figures, 0.0, bookings, command.budget_keys)
        command.resolve(result)
        await self.limiter.settle_each(bookings)

    def _book(
        self,
        command: Command,
        actual: float | None,
        figures: TimeInfo | Mapping[str, Any] | None,
        ended_ago: float,
        bookings: list[Booking],
        keys: tuple[str, ...],
    ) -> None:
        """Add what to settle for a command's success to ``bookings``; clear its reservation.

        Args:
            command: the command.
            actual: its measured duration (``time.duration``), if sent.
            figures: the ``time`` block whose ``operating`` figures are its method's budget's
                view, or None when they are not (a command in a ``batch`` billed whole).
            ended_ago: how long before now it at least ended.
            bookings: where its settlements go (settled together, one call per batch).
            keys: the budgets it was billed to.
        """
        method = command.method
        if actual is not None:
            self.costs.observe(method, actual)
        operating = reset_in = None
        if figures is not None:
            if isinstance(figures, TimeInfo):
                operating, reset_at = figures.operating, figures.operating_reset_at
            else:
                operating = time_figure(figures, "operating")
                reset_at = time_figure(figures, "operating_reset_at")
            reset_in = None if reset_at is None else reset_at - self._wall()
        reserved = command.reserved
        spent = actual if actual is not None else reserved
        for key in keys:
            if key == method:
                bookings.append((key, reserved, spent, operating, reset_in, ended_ago))
            else:
                bookings.append((key, reserved, spent, None, None, ended_ago))
        command.reserved = 0.0

    def _billed_keys(
        self,
        command: Command,
        known: dict[tuple[str, tuple[str, ...]], tuple[str, ...]],
        releases: list[tuple[str, float]],
    ) -> tuple[str, ...]:
        """The budgets a batched command was billed to; the others' holds go to ``releases``.

        Booked to both keys while the model was unknown: the reply that showed it says which
        one this command was billed to (docs/portal.md#how-batch-is-billed), and the other's
        hold is released, not kept until the window moves on. ``known`` keeps the answer per
        method and keys for the rest of the batch.
        """
        keys = command.budget_keys
        if self.billing.detected is None:
            return keys
        pair = (command.method, keys)
        billed = known.get(pair)
        if billed is None:
            in_batch = self.billing.budgets_in_batch(command.method)
            billed = known[pair] = tuple(k for k in keys if k in in_batch) or keys
        if billed != keys:
            releases.extend((key, command.reserved) for key in keys if key not in billed)
        return billed

    def _reset_in(self, info: TimeInfo | None) -> float | None:
        if info is None or info.operating_reset_at is None:
            return None
        return info.operating_reset_at - self._wall()

    async def _failed(self, commands: Sequence[Command], error: BitrixError) -> list[Again]:
        """Book, decide and log each command's failure; fail the final ones here."""
        outcome = classify(error)
        now = self.limiter.clock()
        again: list[Again] = []
        for command in commands:
            if outcome is Outcome.AMBIGUOUS:
                # It may have run: book its estimate rather than drop it.
                await self.limiter.settle_on(
                    command.budget_keys, command.reserved, command.reserved
                )
            else:
                await self.limiter.release_on(command.budget_keys, command.reserved)
            command.reserved = 0.0
            decision = decide(
                error,
                idempotent=command.idempotent,
                attempt=command.attempts,
                refusals=command.refusals,
                elapsed=now - (command.first_sent or now),
                policy=self.retry,
                jitter=self._jitter,
            )
            log.debug(
                "%s: %s -> %s (%s)",
                command.method,
                type(error).__name__,
                decision.action.value,
                decision.reason,
            )
            if decision.action is Action.FAIL:
                if isinstance(error, ConnectError):
                    # Say how often it was tried (the error was made by one attempt).
                    fail(command, error.with_attempts(command.attempts + 1))
                else:
                    fail(command, error)
            elif decision.action is Action.FAIL_UNKNOWN:
                fail(command, OutcomeUnknownError(command.method, error))
            else:
                again.append(Again(command, decision, error))
        return again

    async def send_explicit(
        self, commands: Sequence[Command], *, halt: bool, is_open: Callable[[], bool]
    ) -> None:
        """Send an explicit batch: all its commands in one request, whatever it takes.

        It waits for a request token and for budget for every command (an explicit batch is
        never split: later commands may refer to earlier results). A refusal or a retryable
        failure of the whole request sends it again as decided; when only some commands failed,
        each gets its own error.
        """
        while True:
            if not is_open():
                raise ClientStateError("the client was closed before this batch was sent")
            await self.limiter.acquire()
            if not await self._reserve_all(commands):
                await self.limiter.refund()
                started = self.limiter.clock()
                keys = sorted({BATCH_KEY, *(c.method for c in commands)})
                hints = [await self.limiter.wait_hint(key) for key in keys]
                await self.limiter.sleep(max(0.001, min([h for h in hints if h] + [1.0])))
                self.stats.budget_wait_s += max(0.0, self.limiter.clock() - started)
                continue
            for command in commands:
                command.started = True
            try:
                again = await self.send(commands, halt=halt)
            except asyncio.CancelledError:
                # The request may have run: book the estimates rather than leak them.
                for command in commands:
                    if command.reserved:
                        await self.limiter.settle_on(
                            command.budget_keys, command.reserved, command.reserved
                        )
                        command.reserved = 0.0
                raise
            if not again:
                return
            if len(again) < len(commands):
                for item in again:
                    fail(item.command, item.error)
                return
            self.stats.retries += len(again)
            for item in again:
                if item.decision.action is Action.REQUEUE:
                    item.command.refusals += 1
                else:
                    item.command.attempts += 1
            delay = max(item.decision.delay for item in again)
            if delay > 0:
                await self.limiter.sleep(delay)

    async def _reserve_all(self, commands: Sequence[Command]) -> bool:
        held: list[Command] = []
        for command in commands:
            cost = self.costs.estimate(command.method)
            # An explicit batch is one ``batch`` request: billed whole to ``batch`` unless the
            # portal showed it bills each command to its method.
            command.budgets = self.billing.budgets_in_batch(command.method)
            if not await self.limiter.has_room(command.method) or not (
                await self.limiter.reserve_on(command.budgets, (cost,))
            ):
                command.budgets = ()
                for done in held:
                    await self.limiter.release_on(done.budget_keys, done.reserved)
                    done.reserved = 0.0
                return False
            command.reserved = cost
            held.append(command)
        return True


def fail(command: Command, error: BaseException) -> None:
    """Raise ``error`` on the command's awaiter (unless it gave up)."""
    command.reject(error)


def _timings(
    times: Mapping[str, Mapping[str, Any]], keys: Sequence[str]
) -> tuple[list[float | None], list[float]]:
    """Each command's bounded ``duration`` and how long before the reply it at least ended.

    Commands run in order: each one ended at least the later ones' durations ago, and a
    whole batch ends within the portal's cut-off too, so that is bounded however many.
    """
    durations = [plausible_duration(time_figure(times.get(key), "duration")) for key in keys]
    ended_ago = [0.0] * len(keys)
    later = 0.0
    for index in range(len(keys) - 1, -1, -1):
        ended_ago[index] = min(later, MAX_CALL_S)
        later += durations[index] or 0.0
    return durations, ended_ago


def _result(envelope: Envelope, info: TimeInfo | None) -> CommandResult:
    return CommandResult(envelope.result, envelope.total, envelope.next, info)
