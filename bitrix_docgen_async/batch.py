"""Explicit batches: chain commands with ``$result[key][field]`` references, sent as one request.

    async with client.batch(halt=True) as b:
        num = b.call("crm.documentgenerator.numerator.add", {"fields": {...}})
        b.call("crm.documentgenerator.numerator.get", {"id": num.ref("numerator", "id")})
    num.result()  # the command's own result, or its own exception

Commands run in order on the portal, so a later one can use an earlier one's output
(docs/portal.md#batch). With ``halt=True`` the portal stops at the first failure and the commands
after it raise :class:`CommandSkippedError`.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bitrix_docgen_async.core.envelope import split_batch
from bitrix_docgen_async.core.methods import method_info
from bitrix_docgen_async.errors import (
    ApiError,
    CommandSkippedError,
    OAuthError,
    OperationTimeLimitError,
    OutcomeUnknownError,
    RedirectError,
    ResponseError,
)
from bitrix_docgen_async.session import MAX_BATCH, CommandResult, _Ambiguous, _Refused

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bitrix_docgen_async.session import Session

__all__ = ["Batch", "BatchCall"]

_NOT_SENT = object()


class BatchCall:
    """One command of an explicit batch; its outcome is known once the batch is sent."""

    def __init__(self, key: str, method: str, encoded: str) -> None:
        self.key = key
        self.method = method
        self.encoded = encoded
        self._outcome: Any = _NOT_SENT

    def __repr__(self) -> str:
        return f"BatchCall(key={self.key!r}, method={self.method!r})"

    def ref(self, *path: str | int) -> str:
        """A ``$result[key][...]`` reference to this command's output, for a later command."""
        return f"$result[{self.key}]" + "".join(f"[{part}]" for part in path)

    def _settle(self, outcome: CommandResult | BaseException) -> None:
        self._outcome = outcome

    def response(self) -> CommandResult:
        """The full result (with ``total``/``next`` for lists); raises the command's error."""
        if self._outcome is _NOT_SENT:
            raise RuntimeError("the batch has not been sent yet (leave the 'async with' first)")
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        result: CommandResult = self._outcome
        return result

    def result(self) -> Any:
        """The command's ``result``; raises the command's own error."""
        return self.response().result


class Batch:
    """Collects commands inside ``async with`` and sends them as one ``batch`` on exit."""

    def __init__(self, session: Session, *, halt: bool = False) -> None:
        self._session = session
        self.halt = halt
        self.calls: list[BatchCall] = []

    def call(
        self, method: str, params: Mapping[str, Any] | None = None, *, key: str | None = None
    ) -> BatchCall:
        """Add a command; its parameters may hold ``other.ref(...)`` strings.

        Raises:
            ValueError: more than 50 commands (the portal's limit), a duplicate or bad key.
        """
        if len(self.calls) >= MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} commands")
        name, _, encoded = self._session.prepare(method, params)
        key = key if key is not None else f"k{len(self.calls)}"
        if not key or not all(ch.isalnum() or ch == "_" for ch in key):
            raise ValueError(f"batch keys are letters, digits and '_': {key!r}")
        if any(c.key == key for c in self.calls):
            raise ValueError(f"duplicate batch key {key!r}")
        entry = BatchCall(key, name, encoded)
        self.calls.append(entry)
        return entry

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self.calls:
            await self.send()

    async def send(self) -> None:
        """Send the batch: refusals are retried; other outcomes land on each call."""
        session = self._session
        reads_only = all(method_info(c.method).idempotent for c in self.calls)
        refusals = attempts = 0
        while True:
            await session.limiter.acquire()
            payload = {
                "halt": 1 if self.halt else 0,
                "cmd": {c.key: c.encoded for c in self.calls},
                **session.auth.body_params(),
            }
            session.stats.batches += 1
            try:
                envelope = await session.exchange("batch", payload, session.auth.token)
                reply = split_batch(
                    envelope.result,
                    {c.key: c.method for c in self.calls},
                    secrets=session.auth.secrets(),
                    request_id=envelope.request_id,
                )
            except _Refused as refused:
                refusals += 1
                session.stats.retries += 1
                if refusals > session.retry.max_refusals:
                    return self._settle_all(refused.cause)
                continue
            except (_Ambiguous, ResponseError) as failure:
                cause = failure.cause if isinstance(failure, _Ambiguous) else failure
                if reads_only and attempts < session.retry.max_attempts:
                    attempts += 1
                    session.stats.retries += 1
                    await asyncio.sleep(session.retry.delay(attempts))
                    continue
                return self._settle_all(cause if reads_only else None, cause)
            except (ApiError, OAuthError, RedirectError) as final:
                return self._settle_all(final)
            break
        session.stats.commands += len(self.calls)
        for entry in self.calls:
            failed = reply.errors.get(entry.key)
            if failed is not None:
                entry._settle(failed)
                if isinstance(failed, OperationTimeLimitError):
                    session.stats.rate_limited += 1
            elif entry.key in reply.results:
                entry._settle(
                    CommandResult(
                        reply.results[entry.key],
                        reply.totals.get(entry.key),
                        reply.nexts.get(entry.key),
                        reply.times.get(entry.key),
                    )
                )
            elif self.halt:
                entry._settle(CommandSkippedError(f"{entry.method}: not run, the batch halted"))
            else:
                missing = ResponseError("the batch reply has no entry for this command", status=200)
                entry._settle(_unknown(entry, missing))

    def _settle_all(self, error: BaseException | None, cause: BaseException | None = None) -> None:
        for entry in self.calls:
            if error is not None:
                entry._settle(error)
            else:
                assert cause is not None
                entry._settle(_unknown(entry, cause))


def _unknown(entry: BatchCall, cause: BaseException) -> BaseException:
    if method_info(entry.method).idempotent:
        return cause
    return OutcomeUnknownError(entry.method, cause)
