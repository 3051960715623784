"""The receiver's work queue: a bounded ``asyncio.Queue`` served by a fixed pool of workers.

Accepted document events (``ONCRMDOCUMENTGENERATORDOCUMENT{ADD,UPDATE,DELETE}``) wait here until
a worker calls the user's handler, so that the HTTP answer never waits for the handler.

The portal does not deliver an event again once it was answered 200 (docs/portal.md#events), so a
worker must outlive whatever a handler does: an exception, a ``CancelledError`` the handler
raised itself (not the worker's own cancellation), any other ``BaseException`` short of
``KeyboardInterrupt``/``SystemExit``, all count as a handler error. A worker that ends anyway
(cancelled from outside, say) is replaced (a cancelled one by the next event).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import attrs

from bitrix_docgen_async.models.events import DocumentEvent

__all__ = ["EventHandler", "ReceiverStats", "WorkQueue"]

logger = logging.getLogger("bitrix_docgen_async.receiver")

#: ``await handler(event)`` for each accepted event (a plain function works too).
EventHandler: TypeAlias = Callable[[DocumentEvent], Awaitable[Any] | Any]


@attrs.define
class ReceiverStats:
    """What the receiver saw.

    ``received == accepted + sum(rejected.values()) + sum(app_events.values())``.

    Attributes:
        received: requests that reached :meth:`EventReceiver.handle`.
        accepted: events queued for the handler (answered 200).
        rejected: requests not queued, by reason: ``missing_token``, ``bad_token`` (401),
            ``malformed``, ``error`` (400), ``method`` (405), ``timeout`` (408), ``too_large``
            (413), ``content_type`` (415), ``overloaded``, ``closing`` (503), and
            ``unknown_event`` (answered 200, ignored); with ``tokens=`` also
            ``unknown_member`` (401: no token for that ``member_id``) and
            ``install_conflict`` (401: an ``ONAPPINSTALL`` for a known portal with another
            token).
        app_events: accepted ``ONAPPINSTALL`` (``install``), ``ONAPPUNINSTALL``
            (``uninstall``) and ``ONOFFLINEEVENT`` (``offline_event``) deliveries (200, not
            queued).
        handled: handler calls that returned.
        handler_errors: handler calls that raised anything, ``CancelledError`` included (or ran
            past ``handler_timeout``).
        dropped: accepted events never handled because :meth:`EventReceiver.close` timed out.
    """

    received: int = 0
    accepted: int = 0
    rejected: Counter[str] = attrs.field(factory=Counter)
    app_events: Counter[str] = attrs.field(factory=Counter)
    handled: int = 0
    handler_errors: int = 0
    dropped: int = 0


class WorkQueue:
    """At most ``size`` events waiting, ``concurrency`` handler calls running.

    Args:
        handler: the user's handler; its exceptions are logged (event type, document id and
            exception; never the event's tokens) and counted in ``stats.handler_errors``.
        concurrency: the number of worker tasks (started with the first event or :meth:`start`).
        size: the most events that may wait.
        handler_timeout: seconds one call may run (``None``: no limit).
        stats: where ``handled``, ``handler_errors`` and ``dropped`` are counted.
    """

    def __init__(
        self,
        handler: EventHandler,
        *,
        concurrency: int,
        size: int,
        handler_timeout: float | None,
        stats: ReceiverStats,
    ) -> None:
        self.concurrency = concurrency
        self.handler_timeout = handler_timeout
        self._handler = handler
        self._stats = stats
        self._queue: asyncio.Queue[DocumentEvent] = asyncio.Queue(maxsize=size)
        self._workers: list[asyncio.Task[None]] = []
        self._busy = 0
        self._closed = False
        self._started = 0

    @property
    def size(self) -> int:
        """The most events that may wait."""
        return self._queue.maxsize

    @property
    def waiting(self) -> int:
        """Events waiting for a worker."""
        return self._queue.qsize()

    @property
    def workers(self) -> list[asyncio.Task[None]]:
        """The worker tasks now running (a copy)."""
        return list(self._workers)

    def start(self) -> None:
        """Start the workers (inside the running loop), or replace those that ended.

        A no-op when all are running, and once closed.
        """
        while not self._closed and len(self._workers) < self.concurrency:
            self._spawn()

    def _spawn(self) -> None:
        self._started += 1
        worker = asyncio.get_running_loop().create_task(
            self._work(), name=f"docgen-event-worker-{self._started}"
        )
        self._workers.append(worker)
        worker.add_done_callback(self._worker_ended)

    def _worker_ended(self, worker: asyncio.Task[None]) -> None:
        # A worker only ends through close() (which empties ``_workers`` first) or through
        # something outside the handler's outcome (an outside cancel, a bug here): replace it,
        # or the events already answered 200 would wait forever. A cancelled one is replaced
        # by the next offer() (a cancel may be the event loop shutting down, when a new task
        # would be left pending); one that failed, at once.
        if worker not in self._workers:
            return
        self._workers.remove(worker)
        if worker.cancelled():
            logger.error("event worker %s was cancelled; replacing it", worker.get_name())
            return
        logger.error(
            "event worker %s ended; replacing it", worker.get_name(), exc_info=worker.exception()
        )
        self.start()

    def offer(self, event: DocumentEvent) -> bool:
        """Queue ``event``; ``False`` when the queue is full (or closed)."""
        if self._closed:
            return False
        self.start()
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    async def close(self, timeout: float) -> int:  # noqa: ASYNC109 - one deadline for the drain
        """Let the workers drain the queue for up to ``timeout`` seconds, then stop them.

        Returns:
            The events left unhandled: still waiting, or cancelled in the handler.
        """
        self._closed = True
        if self._workers and (self._queue.qsize() or self._busy):
            try:
                async with asyncio.timeout(max(0.0, timeout)):
                    await self._queue.join()
            except TimeoutError:
                pass
        workers, self._workers = self._workers, []
        dropped = self._busy if workers else 0
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()
            dropped += 1
        self._stats.dropped += dropped
        return dropped

    async def _work(self) -> None:
        while True:
            event = await self._queue.get()
            self._busy += 1
            try:
                await self._run(event)
            finally:
                self._busy -= 1
                self._queue.task_done()

    async def _run(self, event: DocumentEvent) -> None:
        try:
            async with asyncio.timeout(self.handler_timeout):
                outcome = self._handler(event)
                if inspect.isawaitable(outcome):
                    await outcome
        except (KeyboardInterrupt, SystemExit):
            raise
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the worker itself is being cancelled (close() or the loop's shutdown)
            # The handler raised it on its own (e.g. it re-raised a cancelled inner task's
            # error): a handler failure like any other, not the end of this worker.
            self._failed(event, exc)
        except BaseException as exc:  # any other outcome is this one event's failure
            self._failed(event, exc)
        else:
            self._stats.handled += 1

    def _failed(self, event: DocumentEvent, exc: BaseException) -> None:
        self._stats.handler_errors += 1
        logger.error(
            "event handler failed on %s of document %d: %s",
            event.event_type.name,
            event.document_id,
            type(exc).__name__,
            exc_info=exc,
        )
