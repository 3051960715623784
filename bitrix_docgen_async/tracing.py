"""Tracing hooks: one record before and one after every HTTP request to the portal.

A service exports metrics or OpenTelemetry spans from them without patching the client:
``DocgenClient(..., on_request=..., on_response=...)``. A record carries only what is safe to
export: the REST method (``batch`` for a batch), the method of each command it carries, the
HTTP status and the duration. Never a URL, a parameter, a webhook code or a token: the URL of a
webhook carries its code, an OAuth body its token (docs/portal.md#oauth), and a command's query
carries the caller's data.

A hook may be a plain function or a coroutine function; what it raises is logged and ignored,
so that a broken exporter never fails a call.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import attrs

__all__ = ["RequestHook", "RequestRecord", "ResponseHook", "ResponseRecord", "Tracer"]

log = logging.getLogger("bitrix_docgen_async.tracing")


class _Response(Protocol):
    @property
    def status(self) -> int: ...


_R = TypeVar("_R", bound=_Response)
_T = TypeVar("_T")
#: A REST method name: dotted words (``crm.documentgenerator.document.getPdf``).
_METHOD = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+")


@attrs.frozen
class RequestRecord:
    """An HTTP request about to be sent.

    Attributes:
        method: the REST method of the request (``batch`` for a batch).
        commands: the REST method of each command it carries, in order (one for a direct call).
    """

    method: str
    commands: tuple[str, ...]

    @property
    def batch_size(self) -> int:
        """How many commands the request carries."""
        return len(self.commands)


@attrs.frozen
class ResponseRecord:
    """An HTTP request that ended.

    Attributes:
        method: the REST method of the request (``batch`` for a batch).
        commands: the REST method of each command it carried, in order.
        status: the HTTP status, or None when no response arrived.
        duration: seconds from sending to the end of the response (monotonic clock).
        error: the class name of the transport failure when no response arrived, else None.
    """

    method: str
    commands: tuple[str, ...]
    status: int | None
    duration: float
    error: str | None = None

    @property
    def batch_size(self) -> int:
        """How many commands the request carried."""
        return len(self.commands)


RequestHook = Callable[[RequestRecord], "Awaitable[None] | None"]
ResponseHook = Callable[[ResponseRecord], "Awaitable[None] | None"]


def command_methods(method: str, payload: Mapping[str, Any]) -> tuple[str, ...]:
    """The method name of each command of a request's payload (no parameter, no token)."""
    if method != "batch":
        return (method,)
    commands = payload.get("cmd")
    if not isinstance(commands, Mapping):
        return ()
    # A batch command is "method?query" (docs/portal.md#batch): only the part before "?".
    return tuple(str(command).partition("?")[0] for command in commands.values())


async def _dispatch(hook: Callable[[Any], Awaitable[None] | None], record: object) -> None:
    try:
        outcome = hook(record)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception:
        log.exception("a tracing hook raised; ignored")


class Tracer:
    """Calls the hooks around each HTTP request; the session routes every request through it.

    Args:
        on_request: called with a :class:`RequestRecord` before each request.
        on_response: called with a :class:`ResponseRecord` after each request.
        clock: the monotonic clock durations are measured with.
    """

    def __init__(
        self,
        on_request: RequestHook | None = None,
        on_response: ResponseHook | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.on_request = on_request
        self.on_response = on_response
        self._clock = clock

    async def send(
        self,
        method: str,
        payload: Mapping[str, Any],
        request: Callable[[], Awaitable[_R]],
    ) -> _R:
        """Run ``request()`` (one REST request) between the two hooks; returns its result."""
        if self.on_request is None and self.on_response is None:
            return await request()
        return await self.trace(method, command_methods(method, payload), request, _status)

    async def download(
        self, url: str, request: Callable[[], Awaitable[_T]], status: Callable[[_T], int]
    ) -> _T:
        """Run ``request()`` (one GET of a ``*Machine`` URL) between the two hooks.

        The record names the REST method the URL serves (``...document.getPdf``), nothing else
        of it: the URL carries its own authorisation (docs/portal.md#machine-urls-and-downloads).
        """
        if self.on_request is None and self.on_response is None:
            return await request()
        method = download_method(url)
        return await self.trace(method, (method,), request, status)

    async def trace(
        self,
        method: str,
        commands: tuple[str, ...],
        request: Callable[[], Awaitable[_T]],
        status: Callable[[_T], int],
    ) -> _T:
        """Run ``request()`` between the two hooks; ``status`` reads the HTTP status off it."""
        if self.on_request is not None:
            await _dispatch(self.on_request, RequestRecord(method, commands))
        started = self._clock()
        try:
            response = await request()
        except Exception as exc:
            if self.on_response is not None:
                record = ResponseRecord(
                    method, commands, None, self._clock() - started, type(exc).__name__
                )
                await _dispatch(self.on_response, record)
            raise
        if self.on_response is not None:
            record = ResponseRecord(method, commands, status(response), self._clock() - started)
            await _dispatch(self.on_response, record)
        return response


def _status(response: _Response) -> int:
    return response.status


def download_method(url: str) -> str:
    """The REST method a machine URL serves (``crm.documentgenerator.document.getPdf``).

    Only the path's last segment is kept, and only when it looks like a method name: the
    segments before it (a webhook's code) and the query (the signed token) are secrets.
    """
    try:
        last = urlsplit(url).path.rsplit("/", 1)[-1]
    except ValueError:
        return "download"
    name = last.removesuffix(".json")
    if _METHOD.fullmatch(name):
        return name
    return "download"


#: The tracer of a client without hooks.
NO_TRACER = Tracer()
