"""Explicit batches: chain commands with ``$result[key][field]`` references, sent as one request.

    async with client.batch(halt=True) as b:
        num = b.call("crm.documentgenerator.numerator.add", {"fields": {...}})
        b.call("crm.documentgenerator.numerator.get", {"id": num.ref("numerator", "id")})
    num.result()  # the command's own result, or its own exception

Commands run in order on the portal, so a later one can use an earlier one's output
(docs/portal.md#batch). With ``halt=True`` the portal stops at the first failure and the commands
after
it raise :class:`CommandSkippedError`.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from bitrix_docgen_async._commands import Command, CommandResult
from bitrix_docgen_async.calls import structure_result
from bitrix_docgen_async.core.params import with_auth_connector
from bitrix_docgen_async.core.planner import MAX_BATCH

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bitrix_docgen_async.session import Session

_M = TypeVar("_M")

__all__ = ["Batch", "BatchCall"]


class BatchCall:
    """One command of an explicit batch; its outcome is known once the batch is sent."""

    def __init__(self, command: Command) -> None:
        self._command = command

    @property
    def key(self) -> str:
        """Its key in the batch (``$result[key]``)."""
        return self._command.key

    @property
    def method(self) -> str:
        """Its REST method."""
        return self._command.method

    @property
    def encoded(self) -> str:
        """The ``method?query`` string sent inside the batch."""
        return self._command.encoded

    def __repr__(self) -> str:
        return f"BatchCall(key={self.key!r}, method={self.method!r})"

    def ref(self, *path: str | int) -> str:
        """A ``$result[key][...]`` reference to this command's output, for a later command."""
        return f"$result[{self.key}]" + "".join(f"[{part}]" for part in path)

    def response(self) -> CommandResult:
        """The full result (with ``total``/``next`` for lists); raises the command's error."""
        future = self._command.future
        if not future.done():
            raise RuntimeError("the batch has not been sent yet (leave the 'async with' first)")
        result: CommandResult = future.result()
        return result

    @overload
    def result(self) -> Any: ...

    @overload
    def result(self, *, into: type[_M], key: str | None = None) -> _M: ...

    def result(self, *, into: type[Any] | None = None, key: str | None = None) -> Any:
        """The command's ``result``; raises the command's own error.

        Args:
            into: a model (``Document``, ``Numerator``, ...) to structure the result as, with
                the client's one converter, e.g. ``call.result(into=Numerator, key="numerator")``.
            key: the wrapper key the result sits under (``"document"``, ``"numerator"``).

        Raises:
            ResponseError: with ``into``, the result does not fit the model.
        """
        result = self.response().result
        if into is None:
            return result
        return structure_result(result, into, key=key, method=self.method)


class Batch:
    """Collects commands inside ``async with`` and sends them as one ``batch`` on exit.

    It goes through the session's one send path: budget reserved and settled like auto-batched
    calls, refusals sent again, every failure decided by the one retry decision.
    """

    def __init__(
        self, session: Session, *, halt: bool = False, auth_connector: str | None = None
    ) -> None:
        self._session = session
        self.halt = halt
        #: Sent as ``auth_connector`` with every command that has none (the client's own).
        self.auth_connector = auth_connector
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
        command = self._session.command(method, with_auth_connector(params, self.auth_connector))
        key = key if key is not None else f"k{len(self.calls)}"
        if not key or not all(ch.isalnum() or ch == "_" for ch in key):
            raise ValueError(f"batch keys are letters, digits and '_': {key!r}")
        if any(c.key == key for c in self.calls):
            raise ValueError(f"duplicate batch key {key!r}")
        command.key = key
        entry = BatchCall(command)
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
        commands = [c._command for c in self.calls]
        await self._session.send_batch(commands, halt=self.halt)
        for command in commands:
            # Outcomes are read through BatchCall.result(): mark them retrieved for asyncio.
            if command.future.done() and not command.future.cancelled():
                command.future.exception()
