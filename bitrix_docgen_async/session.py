"""The session: queues concurrent calls, sends them as ``batch`` requests, paces and retries.

Every call becomes a command in one FIFO queue. A single flusher task takes a request token from
the limiter, then fills a batch from the queue: at most 50 commands (the portal's batch limit),
an expected execution time under ``batch_time_target`` (the portal cuts requests off at 60 s),
and only commands whose method still has operating budget. One command alone goes as a direct
call. Each awaiter gets its own result or exception.

Failures are sorted by what they say about execution (DESIGN.md §4, "Retries"):
* refused before execution (503 ``QUERY_LIMIT_EXCEEDED``, 429 ``OPERATION_TIME_LIMIT``, 401
  ``expired_token``): always safe, sent again;
* ambiguous (connection lost, timeout, 5xx, an unreadable body): reads are sent again after a
  jittered wait; writes fail with :class:`OutcomeUnknownError` instead of risking a duplicate;
* anything else: raised on the awaiter, with the same class a direct call would raise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

import attrs

from bitrix_docgen_async._retry import RetryPolicy
from bitrix_docgen_async.auth import Auth
from bitrix_docgen_async.core.encoding import build_command, encode_form_body
from bitrix_docgen_async.core.envelope import Envelope, TimeInfo, parse_response, split_batch
from bitrix_docgen_async.core.methods import method_info, normalize_method
from bitrix_docgen_async.core.params import normalize_params
from bitrix_docgen_async.core.ratelimit import CostEstimate
from bitrix_docgen_async.errors import (
    ApiError,
    BitrixError,
    ClientStateError,
    ConnectError,
    OAuthError,
    OperationTimeLimitError,
    OutcomeUnknownError,
    QueryLimitExceededError,
    RedirectError,
    ResponseError,
    ServerError,
    TokenExpiredError,
    TransportError,
)
from bitrix_docgen_async.limiter import Limiter
from bitrix_docgen_async.tracing import NO_TRACER, Tracer
from bitrix_docgen_async.transport import HttpResponse, Transport, origin_of

__all__ = ["ClientStats", "CommandResult", "Session"]

log = logging.getLogger("bitrix_docgen_async.session")

#: The portal runs at most 50 commands per batch (docs/portal.md#batch).
MAX_BATCH = 50
#: How far down the queue one batch looks for commands that fit; bounds the work per batch.
_SCAN_LIMIT = 2000


@attrs.frozen
class CommandResult:
    """One command's success: its ``result`` and, for lists, ``total`` and ``next``."""

    result: Any
    total: int | None = None
    next: int | None = None
    time: TimeInfo | None = None


@attrs.define
class ClientStats:
    """Counters of what the client did (read them, do not set them).

    Attributes:
        http_requests: HTTP requests to the portal that got an HTTP answer (REST calls,
            ``batch`` requests and file downloads; a retry counts again).
        batches: those of them that were ``batch`` requests (automatic or explicit); a call
            sent alone is not a batch, so ``batches <= http_requests``.
        commands: commands the portal answered, alone or inside a batch (50 in a full batch).
        retries: commands sent again after a refusal or a failure that was safe to retry.
        rate_limited: refusals by the portal's limits: 503 ``QUERY_LIMIT_EXCEEDED`` requests
            and 429 ``OPERATION_TIME_LIMIT`` answers.
        limiter_wait_s: seconds calls spent waiting for the client's own limiter, summed.
        downloads: file downloads (GETs of ``*Machine`` URLs), also in ``http_requests``.
    """

    http_requests: int = 0
    batches: int = 0
    commands: int = 0
    retries: int = 0
    rate_limited: int = 0
    limiter_wait_s: float = 0.0
    downloads: int = 0


@attrs.define(eq=False)
class _Command:
    method: str
    params: Mapping[str, Any]
    encoded: str
    future: asyncio.Future[CommandResult]
    idempotent: bool
    batchable: bool = True
    attempts: int = 0
    refusals: int = 0
    reserved: float = 0.0


class _Refused(Exception):
    """The request was refused before execution; the refusal has been dealt with."""

    def __init__(self, cause: ApiError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Ambiguous(Exception):
    """No readable answer: the request may or may not have executed."""

    def __init__(self, cause: BitrixError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def check_options(linger: float, batch_time_target: float) -> None:
    """Reject session options that cannot work (called before anything is opened)."""
    if isinstance(linger, bool) or not isinstance(linger, int | float) or linger < 0:
        raise ValueError(f"linger must be a number >= 0, got {linger!r}")
    if (
        isinstance(batch_time_target, bool)
        or not isinstance(batch_time_target, int | float)
        or batch_time_target <= 0
    ):
        raise ValueError(f"batch_time_target must be a number > 0, got {batch_time_target!r}")


class Session:
    """Batches, paces and retries calls over one transport. Owned by ``DocgenClient``."""

    tracer: Tracer = NO_TRACER  # the client's hooks (tracing.py): set by DocgenClient

    def __init__(
        self,
        transport: Transport,
        auth: Auth,
        limiter: Limiter,
        *,
        linger: float = 0.005,
        batch_time_target: float = 20.0,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen
    ) -> None:
        check_options(linger, batch_time_target)
        self.transport = transport
        self.auth = auth
        self.limiter = limiter
        self.linger = linger
        self.batch_time_target = batch_time_target
        self.retry = retry
        self.stats = ClientStats()
        self._queue: deque[_Command] = deque()
        self._costs: dict[str, CostEstimate] = {}
        self._learning: set[str] = set()
        self._reset_at: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._full = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._retries: set[asyncio.Task[None]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the flusher task (inside a running loop)."""
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(
                self._run(), name="docgen-flusher"
            )

    async def close(self) -> None:
        """Let requests in flight finish, then fail whatever is still queued."""
        self._closed = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for task in list(self._retries):
            task.cancel()
        if self._retries:
            await asyncio.gather(*self._retries, return_exceptions=True)
        # On 3.11 the flusher's wait_for can swallow a cancel: repeat it until it ends.
        while self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            await asyncio.wait([self._flusher], timeout=0.1)
        closed = ClientStateError("the client was closed before this call was sent")
        while self._queue:
            self._fail(self._queue.popleft(), closed)

    # -- calls ------------------------------------------------------------------------------

    def prepare(
        self, method: str, params: Mapping[str, Any] | None
    ) -> tuple[str, dict[str, Any], str]:
        """Validate a call before anything is queued: (method, params, batch command string)."""
        name = normalize_method(method)
        if name == "batch":
            raise ValueError("send batches with client.batch(), not call('batch')")
        plain = normalize_params(params)  # one wire form: refuse the unsendable up front
        return name, plain, build_command(name, plain)

    async def call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
    ) -> CommandResult:
        """Queue one call and wait for its own result.

        Args:
            method: the REST method, e.g. ``crm.documentgenerator.numerator.get``.
            params: its parameters.
            idempotent: whether it may be sent again after an ambiguous failure; by default
                known reads are and everything else is not.
        """
        if self._closed or self._flusher is None:
            raise ClientStateError("the client is not open: use it inside 'async with'")
        name, plain, encoded = self.prepare(method, params)
        info = method_info(name)
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        safe = info.idempotent if idempotent is None else idempotent
        self._enqueue([_Command(name, plain, encoded, future, safe, info.batchable)])
        return await future

    def flush(self) -> None:
        """Send what is queued now instead of waiting out the linger."""
        self._full.set()

    def _enqueue(self, commands: Sequence[_Command], *, front: bool = False) -> None:
        if front:
            self._queue.extendleft(reversed(commands))
        else:
            self._queue.extend(commands)
        if len(self._queue) >= MAX_BATCH:
            self._full.set()
        self._changed.set()

    # -- the flusher ------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._changed.clear()
                await self._changed.wait()
                continue
            if len(self._queue) < MAX_BATCH and self.linger > 0 and not self._full.is_set():
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.linger)
            self._full.clear()
            try:
                await self.limiter.acquire()
            except BitrixError as exc:
                # The limiter cannot pace (a shared backend is gone): fail every waiting call
                # rather than leave them hanging; later calls try the limiter again.
                while self._queue:
                    self._fail(self._queue.popleft(), exc)
                continue
            self.stats.limiter_wait_s = self.limiter.waited
            self._changed.clear()
            batch, hint = await self._compose()
            if not batch:
                await self.limiter.refund()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), hint)
                continue
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _estimate(self, method: str) -> float:
        learned = self._costs.get(method)
        return learned.pessimistic if learned is not None else method_info(method).prior_cost

    async def _compose(self) -> tuple[list[_Command], float]:
        """Take the commands for one request; return them and, if none, how long to wait."""
        batch: list[_Command] = []
        kept: list[_Command] = []
        blocked: set[str] = set()
        expected = 0.0
        scanned = 0
        while self._queue and len(batch) < MAX_BATCH and scanned < _SCAN_LIMIT:
            command = self._queue.popleft()
            scanned += 1
            if command.future.done():  # the caller gave up waiting
                continue
            method = command.method
            if method in blocked or (batch and not command.batchable):
                kept.append(command)
                continue
            cost = self._estimate(method)
            # A method never measured goes in one batch at a time: its prior may be far off,
            # and the first reply teaches the real cost before more of it is sent.
            unmeasured_in_flight = method not in self._costs and method in self._learning
            too_long = bool(batch) and expected + cost > self.batch_time_target
            if unmeasured_in_flight or too_long:
                blocked.add(method)
                kept.append(command)
                continue
            if not await self.limiter.backend.try_reserve(method, cost):
                blocked.add(method)
                kept.append(command)
                continue
            command.reserved = cost
            batch.append(command)
            expected += cost
            if not command.batchable:
                break
        self._queue.extendleft(reversed(kept))
        for command in batch:
            if command.method not in self._costs:
                self._learning.add(command.method)
        hints = [await self.limiter.backend.wait_hint(m) for m in blocked]
        known = [h for h in hints if h is not None]
        return batch, min([*known, 1.0])

    # -- sending ----------------------------------------------------------------------------

    async def _send(self, batch: list[_Command]) -> None:
        try:
            if len(batch) == 1:
                await self._send_direct(batch[0])
            else:
                await self._send_batch(batch)
        except Exception as exc:  # a bug must not leave awaiters hanging forever
            log.exception("unexpected error while sending %d command(s)", len(batch))
            for command in batch:
                self._fail(command, exc)
        finally:
            # This batch is no longer in flight: its unmeasured methods may go again (measured
            # now, or still unmeasured after a failure, in which case the next batch probes).
            self._learning.difference_update(command.method for command in batch)
            self._changed.set()

    async def exchange(self, method: str, payload: dict[str, Any], stale: str | None) -> Envelope:
        """One HTTP request; refusals handled here, ambiguity and final errors raised.

        Raises:
            _Refused: refused before execution (the bucket was drained or the token refreshed).
            _Ambiguous: no readable answer.
            ApiError: the portal's final answer.
        """
        body = encode_form_body(payload)  # the batch commands' encoder: one wire form
        try:
            url = self.auth.url_for(method)
            response = await self.tracer.send(
                method, payload, lambda: self.transport.post_form(url, body)
            )
        except (TransportError, ResponseError) as exc:  # ResponseError: a reply over the cap
            raise _Ambiguous(exc) from None
        self.stats.http_requests += 1
        self._follow_move(response)
        try:
            return parse_response(
                response.status,
                response.body,
                method=method,
                headers=response.headers,
                secrets=self.auth.secrets(),
            )
        except QueryLimitExceededError as exc:
            # The portal's bucket is full: ours must be empty too.
            self.stats.rate_limited += 1
            await self.limiter.backend.drain_requests()
            raise _Refused(exc) from None
        except TokenExpiredError as exc:
            await self.auth.refresh(self.transport, stale)  # OAuthError propagates: final
            raise _Refused(exc) from None
        except OperationTimeLimitError as exc:
            self.stats.rate_limited += 1
            await self._suspend(method)
            raise _Refused(exc) from None
        except (ServerError, ResponseError) as exc:
            raise _Ambiguous(exc) from None

    def _follow_move(self, response: HttpResponse) -> None:
        origin = origin_of(response.url)
        if origin != self.auth.origin:
            self.auth.rebase(origin)

    async def _send_direct(self, command: _Command) -> None:
        stale = self.auth.token
        payload = {**command.params, **self.auth.body_params()}
        try:
            envelope = await self.exchange(command.method, payload, stale)
        except _Refused as refused:
            await self._refused([command], refused.cause)
        except _Ambiguous as ambiguous:
            await self._ambiguous([command], ambiguous.cause)
        except (ApiError, OAuthError, RedirectError) as exc:
            await self._release(command)
            self._fail(command, exc)
        else:
            self.stats.commands += 1
            result = CommandResult(envelope.result, envelope.total, envelope.next, envelope.time)
            await self._complete(command, result)

    async def _send_batch(self, batch: list[_Command]) -> None:
        stale = self.auth.token
        keys = [f"c{i}" for i in range(len(batch))]
        payload = {
            "halt": 0,
            "cmd": {key: command.encoded for key, command in zip(keys, batch, strict=True)},
            **self.auth.body_params(),
        }
        self.stats.batches += 1
        try:
            envelope = await self.exchange("batch", payload, stale)
            reply = split_batch(
                envelope.result,
                {k: c.method for k, c in zip(keys, batch, strict=True)},
                secrets=self.auth.secrets(),
                request_id=envelope.request_id,
            )
        except _Refused as refused:
            await self._refused(batch, refused.cause)
            return
        except _Ambiguous as ambiguous:
            await self._ambiguous(batch, ambiguous.cause)
            return
        except ResponseError as exc:
            await self._ambiguous(batch, exc)
            return
        except (ApiError, OAuthError, RedirectError) as exc:
            for command in batch:
                await self._release(command)
                self._fail(command, exc)
            return
        self.stats.commands += len(batch)
        # Commands run in order: each one ended at least the later ones' durations ago.
        ended_ago: dict[str, float] = {}
        later = 0.0
        for key in reversed(keys):
            ended_ago[key] = later
            timing = reply.times.get(key)
            later += timing.duration if timing is not None and timing.duration else 0.0
        suspended: set[str] = set()
        for key, command in zip(keys, batch, strict=True):
            error = reply.errors.get(key)
            if isinstance(error, OperationTimeLimitError):
                self.stats.rate_limited += 1
                if command.method not in suspended:
                    suspended.add(command.method)
                    await self._suspend(command.method)
                await self._refused([command], error)
            elif error is not None:
                await self._release(command)
                self._fail(command, error)
            elif key in reply.results:
                result = CommandResult(
                    reply.results[key],
                    reply.totals.get(key),
                    reply.nexts.get(key),
                    reply.times.get(key),
                )
                await self._complete(command, result, ended_ago[key])
            else:
                missing = ResponseError("the batch reply has no entry for this command", status=200)
                await self._ambiguous([command], missing)

    # -- outcomes ---------------------------------------------------------------------------

    async def _complete(
        self, command: _Command, result: CommandResult, ended_ago: float = 0.0
    ) -> None:
        info = result.time
        actual = info.duration if info is not None and info.duration is not None else None
        if actual is not None:
            learned = self._costs.get(command.method)
            if learned is None:
                self._costs[command.method] = CostEstimate(actual)
            else:
                learned.observe(actual)
        reset_in = None
        if info is not None and info.operating_reset_at is not None:
            self._reset_at[command.method] = info.operating_reset_at
            reset_in = info.operating_reset_at - time.time()
        await self.limiter.backend.settle(
            command.method,
            command.reserved,
            actual if actual is not None else command.reserved,
            info.operating if info is not None else None,
            reset_in,
            ended_ago,
        )
        command.reserved = 0.0
        if not command.future.done():
            command.future.set_result(result)

    async def _release(self, command: _Command) -> None:
        if command.reserved:
            await self.limiter.backend.release(command.method, command.reserved)
            command.reserved = 0.0

    def _fail(self, command: _Command, exc: BaseException) -> None:
        if not command.future.done():
            command.future.set_exception(exc)

    async def _suspend(self, method: str) -> None:
        """429 for ``method``: wait until the portal's oldest bucket drops out."""
        reset_at = self._reset_at.get(method)
        seconds = reset_at - time.time() if reset_at is not None else 0.0
        await self.limiter.backend.suspend(method, max(seconds, self.limiter.bucket_seconds))

    async def _refused(self, commands: Sequence[_Command], cause: ApiError) -> None:
        """Refused before execution: always safe to send again (within a sanity bound)."""
        again: list[_Command] = []
        for command in commands:
            await self._release(command)
            command.refusals += 1
            if command.refusals > self.retry.max_refusals:
                self._fail(command, cause)
            else:
                again.append(command)
        if again:
            self.stats.retries += len(again)
            log.debug(
                "%d command(s) refused before execution (%s); queued again", len(again), cause.code
            )
            self._enqueue(again, front=True)

    async def _ambiguous(self, commands: Sequence[_Command], cause: BitrixError) -> None:
        """No readable answer: reads go again after a wait; writes report an unknown outcome."""
        again: list[_Command] = []
        for command in commands:
            # It may have run: book its estimated cost rather than drop it.
            if command.reserved:
                await self.limiter.backend.settle(
                    command.method, command.reserved, command.reserved, None, None
                )
                command.reserved = 0.0
            if not command.idempotent and not isinstance(cause, ConnectError):
                # (A refused connection sent nothing: any command may go again.)
                self._fail(command, OutcomeUnknownError(command.method, cause))
            elif command.attempts >= self.retry.max_attempts:
                tries = command.attempts + 1
                self._fail(
                    command,
                    cause.with_attempts(tries) if isinstance(cause, ConnectError) else cause,
                )
            else:
                command.attempts += 1
                again.append(command)
        if not again:
            return
        self.stats.retries += len(again)
        delay = self.retry.delay(max(c.attempts for c in again))
        log.debug(
            "%d read(s) failed ambiguously (%s); retrying in %.2f s",
            len(again),
            type(cause).__name__,
            delay,
        )
        task = asyncio.get_running_loop().create_task(self._retry_after(delay, again))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _retry_after(self, delay: float, commands: list[_Command]) -> None:
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            for command in commands:
                self._fail(command, ClientStateError("the client was closed before a retry"))
            raise
        self._enqueue(commands, front=True)
