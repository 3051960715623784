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
401   ``auth[application_token]`` missing or not the application's (constant-time compare)
405   not a POST (when :meth:`EventReceiver.handle` is mounted for other methods)
408   the body did not arrive within ``read_timeout``
413   ``Content-Length`` above ``max_body``, or more than ``max_body`` bytes sent
415   a ``Content-Type`` other than ``application/x-www-form-urlencoded``
503   the queue is full (back-pressure), or the receiver is closing
====  ==============================================================================

Why 503 when full: the queue is bounded so that a burst cannot grow memory without limit.
Bitrix24 does not retry, so an event answered 503 is lost to this receiver (reconcile with
``crm.documentgenerator.document.list`` if that matters); but the sender sees the refusal and the
portal calls a failing handler less often, which is the back-pressure there is. Size
``queue_size`` for the largest burst you expect, and ``concurrency`` for the handler's pace.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Final

from aiohttp import web

from bitrix_docgen_async.models.events import DocumentEvent
from bitrix_docgen_async.receiver.parsing import (
    InvalidEventError,
    UnknownEventError,
    form_token,
    parse_event,
    read_form,
)
from bitrix_docgen_async.receiver.workers import EventHandler, ReceiverStats, WorkQueue

__all__ = ["EventReceiver"]

logger = logging.getLogger("bitrix_docgen_async.receiver")

_FORM: Final = "application/x-www-form-urlencoded"
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
        application_token: the application's token (``auth[application_token]``; it arrives with
            ``ONAPPINSTALL``). Never logged.
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
        application_token: str,
        handler: EventHandler,
        max_body: int = 64 * 1024,
        concurrency: int = 4,
        queue_size: int = 1000,
        read_timeout: float = 10.0,
        handler_timeout: float | None = 300.0,
        shutdown_timeout: float = 10.0,
    ) -> None:
        if not isinstance(application_token, str) or not application_token:
            raise ValueError("application_token must be a non-empty string")
        if not callable(handler):
            raise TypeError("handler must be an async callable taking a DocumentEvent")
        for name, value in (("max_body", max_body), ("concurrency", concurrency)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError("queue_size must be a positive integer")
        self._token = _bytes(application_token)
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
        token = form_token(form)
        if token is None:
            return self._answer(401, "missing_token")
        if not hmac.compare_digest(_bytes(token), self._token):
            return self._answer(401, "bad_token")
        try:
            event = parse_event(form)
        except UnknownEventError as exc:
            logger.debug("event receiver: ignored event %r", exc.event_name)
            return self._answer(200, "unknown_event")
        except InvalidEventError as exc:
            logger.warning("event receiver: malformed delivery (%s)", exc)
            return self._answer(400, "malformed")
        return self._enqueue(event)

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
