"""``EventReceiver``: the aiohttp endpoint Bitrix24 posts document events to.

docs/portal.md#events: the portal delivers each event once, through a queue server, and does not
retry; a handler that is slow or fails loses events and gets called less often. So the receiver
answers at once and runs the user's handler later: a checked event goes into a bounded
:class:`asyncio.Queue` served by a fixed number of worker tasks.

Answers (the body is a short word; nothing from the request is echoed):

====  ==============================================================================
200   accepted and queued; also a correctly signed event that is not a document event
      (ignored, logged at debug)
400   malformed: the form is not a document event (missing key, bad id, ...), or the
      body could not be read (bad gzip/deflate, broken chunks: the connection is closed)
401   ``auth[application_token]`` missing or not the one of the portal named by
      ``auth[member_id]`` (constant-time compare); an ``ONAPPINSTALL`` whose token differs
      from the one already known for its ``member_id``
405   not a POST (when :meth:`EventReceiver.handle` is mounted for other methods)
408   the body did not arrive within ``read_timeout``
413   ``Content-Length`` above ``max_body``, or more than ``max_body`` bytes sent
415   a ``Content-Type`` other than ``application/x-www-form-urlencoded``
503   the queue is full (back-pressure), or the receiver is closing
====  ==============================================================================

Many portals (``tokens=``): each event is checked against the token of the portal its
``auth[member_id]`` names (docs/portal.md#installation-and-many-portals). ``ONAPPINSTALL`` adds
the token of a ``member_id`` not known yet; it cannot be verified, so it never replaces a known
token (replacing one is the application's own call: write the mapping, or its store).
``ONAPPUNINSTALL`` signed with the portal's current token removes it, and that portal's events
are refused from then on. ``ONOFFLINEEVENT`` (correctly signed) calls ``on_offline(member_id)``,
for instance ``OfflineEvents.wake``. These three are answered 200 and are not queued.

Why 503 when full: the queue is bounded so that a burst cannot grow memory without limit.
Bitrix24 does not retry, so an event answered 503 is lost to this receiver (reconcile with
``crm.documentgenerator.document.list`` if that matters); but the sender sees the refusal and the
portal calls a failing handler less often, which is the back-pressure there is. Size
``queue_size`` for the largest burst you expect, and ``concurrency`` for the handler's pace.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from bitrix_docgen_async.models.events import AppInstallEvent, AppUninstallEvent, DocumentEvent
from bitrix_docgen_async.receiver.parsing import (
    InvalidEventError,
    UnknownEventError,
    event_name,
    form_member,
    form_token,
    parse_app_install,
    parse_app_uninstall,
    parse_event,
    read_form,
)
from bitrix_docgen_async.receiver.tokens import ForgetToken, SaveToken, TokenBook, TokenSource
from bitrix_docgen_async.receiver.workers import EventHandler, ReceiverStats, WorkQueue

__all__ = ["EventReceiver"]

logger = logging.getLogger("bitrix_docgen_async.receiver")

_FORM: Final = "application/x-www-form-urlencoded"
_INSTALL: Final = "ONAPPINSTALL"
_UNINSTALL: Final = "ONAPPUNINSTALL"
_OFFLINE: Final = "ONOFFLINEEVENT"
#: Compared against when no token is known, so that an unknown member_id takes the same time.
_NOBODY: Final = secrets.token_bytes(16)
_DISCARD_FACTOR: Final = 16
_TEXT: Final = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    503: "Service Unavailable",
}


class EventReceiver:
    """Receives Bitrix24 document event POSTs, checks them, and hands them to ``handler``.

    Mount :meth:`handle` as a POST route of your aiohttp app, or serve :meth:`app`. Bind its
    public URL with ``client.events.ensure_bound(...)`` (``event.bind``).

    Args:
        application_token: the application's token when it is installed on one portal
            (``auth[application_token]``; it arrives with ``ONAPPINSTALL``). Never logged.
        tokens: instead, the tokens of many portals by ``member_id``: a mutable mapping the
            receiver fills from ``ONAPPINSTALL`` and clears on ``ONAPPUNINSTALL``, or an async
            lookup ``await tokens(member_id) -> str | None`` (see ``save_token``).
        save_token: with a lookup, ``await save_token(member_id, token)`` stores the token of a
            new portal (insert-if-absent).
        forget_token: with a lookup, ``await forget_token(member_id)`` drops a removed portal.
        on_install: ``await on_install(event)`` after an ``ONAPPINSTALL`` was accepted (the
            installing user's tokens are in the :class:`AppInstallEvent`); errors are logged.
        on_uninstall: ``await on_uninstall(event)`` after an accepted ``ONAPPUNINSTALL``.
        on_offline: ``on_offline(member_id)`` for each accepted ``ONOFFLINEEVENT`` (for
            example ``OfflineEvents.wake``).
        handler: called as ``await handler(event)`` for each accepted :class:`DocumentEvent`,
            after the answer; exceptions are logged and counted, not propagated.
        max_body: the largest body read, in bytes (64 KiB; a real delivery is under 1 KiB).
        concurrency: the number of worker tasks, so of handler calls running at once.
        queue_size: accepted events waiting for a worker; when full, deliveries get 503.
        read_timeout: seconds allowed for reading a body.
        handler_timeout: seconds one handler call may run (``None``: no limit); past it the call
            is cancelled and counted in ``handler_errors``.
        shutdown_timeout: seconds the app's ``on_cleanup`` waits for the queue to drain.
    """

    def __init__(
        self,
        *,
        application_token: str | None = None,
        tokens: TokenSource | None = None,
        handler: EventHandler,
        save_token: SaveToken | None = None,
        forget_token: ForgetToken | None = None,
        on_install: Callable[[AppInstallEvent], Awaitable[Any] | Any] | None = None,
        on_uninstall: Callable[[AppUninstallEvent], Awaitable[Any] | Any] | None = None,
        on_offline: Callable[[str], Awaitable[Any] | Any] | None = None,
        max_body: int = 64 * 1024,
        concurrency: int = 4,
        queue_size: int = 1000,
        read_timeout: float = 10.0,
        handler_timeout: float | None = 300.0,
        shutdown_timeout: float = 10.0,
    ) -> None:
        if (application_token is None) == (tokens is None):
            raise ValueError("pass either application_token (one portal) or tokens (many)")
        if application_token is not None and (
            not isinstance(application_token, str) or not application_token
        ):
            raise ValueError("application_token must be a non-empty string")
        if not callable(handler):
            raise TypeError("handler must be an async callable taking a DocumentEvent")
        for name, value in (("max_body", max_body), ("concurrency", concurrency)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError("queue_size must be a positive integer")
        self._token = _bytes(application_token) if application_token is not None else None
        self._book = (
            TokenBook(tokens, save_token=save_token, forget_token=forget_token)
            if tokens is not None
            else None
        )
        self._on_install = on_install
        self._on_uninstall = on_uninstall
        self._on_offline = on_offline
        self.max_body = max_body
        self.read_timeout = read_timeout
        self.shutdown_timeout = shutdown_timeout
        self.stats = ReceiverStats()
        self._work = WorkQueue(
            handler,
            concurrency=concurrency,
            size=queue_size,
            handler_timeout=handler_timeout,
            stats=self.stats,
        )
        self._closing = False
        self._full_logged = False

    def __repr__(self) -> str:
        return (
            f"EventReceiver(concurrency={self.concurrency}, max_body={self.max_body}, "
            f"queued={self.queued}, closing={self._closing})"
        )

    @property
    def concurrency(self) -> int:
        """The number of worker tasks, so of handler calls running at once."""
        return self._work.concurrency

    @property
    def queued(self) -> int:
        """Accepted events waiting for a worker."""
        return self._work.waiting

    # -- serving -----------------------------------------------------------------------------

    def app(self, path: str = "/") -> web.Application:
        """A ready ``web.Application`` with ``POST path`` -> :meth:`handle`.

        Its ``on_startup`` starts the workers and its ``on_cleanup`` calls
        ``close(timeout=shutdown_timeout)``.
        """
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError("path must start with '/'")
        application = web.Application()
        application.router.add_post(path, self.handle)
        application.on_startup.append(self._on_startup)
        application.on_cleanup.append(self._on_cleanup)
        return application

    async def handle(self, request: web.Request) -> web.Response:
        """The aiohttp handler: answer one delivery (see the module docstring for statuses).

        It never raises and never answers 5xx except 503 (full or closing).
        """
        self.stats.received += 1
        try:
            response = await self._handle(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never a 500: whatever broke, the request was unusable
            logger.warning("event receiver: %s while reading a delivery", type(exc).__name__)
            response = self._answer(400, "error")
        return await self._settle(request, response)

    async def close(
        self,
        timeout: float = 10.0,  # noqa: ASYNC109 - a drain deadline, the API the issue names
    ) -> int:
        """Stop accepting, let the workers drain the queue for up to ``timeout`` s, stop them.

        Deliveries arriving meanwhile get 503. Safe to call more than once.

        Returns:
            The number of accepted events left unhandled (also added to ``stats.dropped``).
        """
        self._closing = True
        dropped = await self._work.close(timeout)
        if dropped:
            logger.warning("event receiver closed with %d event(s) unhandled", dropped)
        return dropped

    # -- one request ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return self._answer(405, "method", {"Allow": "POST"})
        try:
            length = request.content_length
        except ValueError:
            return self._answer(400, "malformed")
        if length is not None and length > self.max_body:
            return self._answer(413, "too_large")
        try:
            async with asyncio.timeout(self.read_timeout):
                body = await self._read(request)
        except TimeoutError:
            return self._answer(408, "timeout")
        if body is None:
            return self._answer(413, "too_large")
        if "Content-Type" in request.headers and request.content_type != _FORM:
            return self._answer(415, "content_type")
        if self._closing:
            return self._answer(503, "closing")
        form = read_form(body)
        name = event_name(form)
        if name == _INSTALL:
            return await self._install(form)
        token = form_token(form)
        if token is None:
            return self._answer(401, "missing_token")
        expected = await self._expected(form_member(form))
        # Compared even when no token is known, so that the answer takes the same time.
        matches = hmac.compare_digest(_bytes(token), expected or _NOBODY)
        if expected is None:
            return self._answer(401, "unknown_member")
        if not matches:
            return self._answer(401, "bad_token")
        if name == _UNINSTALL:
            return await self._uninstall(form)
        if name == _OFFLINE:
            member = form_member(form) or ""
            await self._hook(self._on_offline, member, "on_offline")
            return self._app_event("offline_event")
        try:
            event = parse_event(form)
        except UnknownEventError as exc:
            logger.debug("event receiver: ignored event %r", exc.event_name)
            return self._answer(200, "unknown_event")
        except InvalidEventError as exc:
            logger.warning("event receiver: malformed delivery (%s)", exc)
            return self._answer(400, "malformed")
        return self._enqueue(event)

    async def _expected(self, member_id: str | None) -> bytes | None:
        """The token the event must carry: the one portal's, or that of ``member_id``."""
        if self._book is None:
            return self._token
        if member_id is None:
            return None
        token = await self._book.lookup(member_id)
        return None if token is None else _bytes(token)

    async def _install(self, form: Any) -> web.Response:
        try:
            event = parse_app_install(form)
        except InvalidEventError as exc:
            logger.warning("event receiver: malformed ONAPPINSTALL (%s)", exc)
            return self._answer(400, "malformed")
        token = _bytes(event.application_token)
        if self._book is None:
            # One portal: its token is known already; an install can only repeat it.
            if self._token is None or not hmac.compare_digest(token, self._token):
                return self._answer(401, "bad_token")
            return self._app_event("install")
        known = await self._book.lookup(event.member_id)
        if known is not None:
            # An install cannot be verified: it never replaces a known token.
            if hmac.compare_digest(token, _bytes(known)):
                return self._app_event("install")
            logger.warning(
                "event receiver: refused an ONAPPINSTALL with another token for a known portal "
                "(%s); replace the stored token yourself if the application was reinstalled",
                event.domain,
            )
            return self._answer(401, "install_conflict")
        if not await self._book.add_new(event.member_id, event.application_token):
            logger.info("event receiver: ONAPPINSTALL token of %s not stored", event.domain)
        await self._hook(self._on_install, event, "on_install")
        return self._app_event("install")

    async def _uninstall(self, form: Any) -> web.Response:
        try:
            event = parse_app_uninstall(form)
        except InvalidEventError as exc:
            logger.warning("event receiver: malformed ONAPPUNINSTALL (%s)", exc)
            return self._answer(400, "malformed")
        if self._book is not None:
            await self._book.remove(event.member_id)
        await self._hook(self._on_uninstall, event, "on_uninstall")
        return self._app_event("uninstall")

    async def _hook(self, hook: Callable[[Any], Any] | None, value: Any, name: str) -> None:
        if hook is None:
            return
        try:
            outcome = hook(value)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:  # the event was accepted; the hook's failure is the app's
            logger.error("event receiver: %s failed: %s", name, type(exc).__name__, exc_info=exc)

    def _app_event(self, kind: str) -> web.Response:
        self.stats.app_events[kind] += 1
        return web.Response(status=200, text=_TEXT[200])

    async def _read(self, request: web.Request) -> bytes | None:
        """The body, or ``None`` as soon as it passes ``max_body``."""
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await request.content.read(self.max_body + 1 - size)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)

    async def _settle(self, request: web.Request, response: web.Response) -> web.Response:
        """Leave the body read to its end, or the connection closing after ``response``.

        A body left unread (405, 413) is read and dropped, up to ``16 * max_body`` bytes within
        ``read_timeout``, so that the sender gets the answer and the connection stays usable.
        Past that, or after a 408, the answer says ``Connection: close``. A body that failed
        to decode (bad gzip/deflate, broken chunks) is ended here: aiohttp would otherwise read
        it again after the answer and log the decoding error as an unhandled exception.
        """
        content = request.content
        try:
            if content.exception() is None and not content.at_eof() and response.status != 408:
                left = _DISCARD_FACTOR * self.max_body
                async with asyncio.timeout(self.read_timeout):
                    while left > 0 and (chunk := await content.read(min(left, 1 << 16))):
                        left -= len(chunk)
            if content.at_eof():
                return response
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: S110 - the body is broken or slow: close the connection below
            pass
        response.force_close()
        try:
            if content.exception() is not None:
                request.protocol.close()
                content.feed_eof()
        except Exception:  # noqa: S110 - nothing more to do for this connection
            pass
        return response

    def _enqueue(self, event: DocumentEvent) -> web.Response:
        if not self._work.offer(event):
            if not self._full_logged:
                self._full_logged = True
                logger.warning(
                    "event receiver: queue full (%d); answering 503 until there is room",
                    self._work.size,
                )
            return self._answer(503, "overloaded", {"Retry-After": "1"})
        self._full_logged = False
        self.stats.accepted += 1
        return web.Response(status=200, text=_TEXT[200])

    def _answer(
        self, status: int, reason: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        self.stats.rejected[reason] += 1
        return web.Response(status=status, text=_TEXT[status], headers=headers)

    # -- app hooks -------------------------------------------------------------------------------

    async def _on_startup(self, _app: web.Application) -> None:
        self._work.start()

    async def _on_cleanup(self, _app: web.Application) -> None:
        await self.close(timeout=self.shutdown_timeout)


def _bytes(text: str) -> bytes:
    """``text`` as bytes for ``hmac.compare_digest`` (which refuses non-ASCII ``str``)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")
