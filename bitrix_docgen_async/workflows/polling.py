"""One polling loop for every document waiting for its PDF.

Each round looks at every document that is due with concurrent ``document.get`` calls, which the
session batches 50 to a request; documents due soon are pulled into the same round, so a round
over 3,000 documents costs 60 requests. Callers waiting on the same document share its polls.

Readiness is :meth:`Document.pdf_state`, the library's one rule. A document that
``documents.update`` returned carries ``pdf_since`` (the render from before the update): its
``pdfUrl`` may still be that render's (docs/portal.md#where-the-sources-disagree), and only a
changed ``pdfId`` tells
the new PDF apart. ``document.get`` does not show ``pdfId``, so such a document is also read
through its ``document.list`` row (filtered by id, in the same batch), which does
(:func:`look`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Iterable
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from bitrix_docgen_async.core.pdf import PdfSince, PdfState, PollSchedule
from bitrix_docgen_async.errors import (
    BitrixError,
    ClientStateError,
    PollTimeoutError,
    ResponseError,
    TransportError,
)
from bitrix_docgen_async.limiter import Clock
from bitrix_docgen_async.models import Document

if TYPE_CHECKING:
    from bitrix_docgen_async.client import DocgenClient

__all__ = ["Outcome", "PdfPoller", "document_state", "iter_ready", "look"]

log = logging.getLogger("bitrix_docgen_async.workflows.polling")

#: What a watcher receives: the document (ready or failed) or the error that ended its watch.
Outcome = tuple[int, Document | BitrixError]


def document_state(document: Document) -> PdfState:
    """The PDF state of a :class:`Document` (:meth:`Document.pdf_state`)."""
    return document.pdf_state()


async def look(client: DocgenClient, document_id: int, since: PdfSince | None) -> Document:
    """The document as it is now, in a view that can show whether its PDF is ready.

    Without ``since``: ``crm.documentgenerator.document.get``. With it, also the document's
    ``crm.documentgenerator.document.list`` row, sent together (one batch): ``get`` has the
    fresh URLs and ``isTransformationError``, the row the ``pdfId`` that ``get`` lacks; the
    result is ``get``'s document with the row's ``pdfId`` and ``since`` carried over.

    Raises:
        NotFoundError: the document does not exist (any more).
    """
    if since is None:
        return await client.documents.get(document_id)
    got, page = await asyncio.gather(
        client.documents.get(document_id),
        client.documents.list(filter={"id": document_id}).page(0),
        return_exceptions=True,
    )
    if isinstance(got, BaseException):
        raise got
    if isinstance(page, BaseException):
        raise page
    pdf_id = next((row.pdf_id for row in page.items if row.id == document_id), None)
    return attrs.evolve(got, pdf_id=pdf_id, pdf_since=since)


@attrs.define(eq=False)
class _Watch:
    due: float
    since: PdfSince | None = None
    looks: int = 0
    last: Document | None = None
    queues: list[asyncio.Queue[Outcome]] = attrs.field(factory=list)


class PdfPoller:
    """Shared by everything of one client that waits for PDFs.

    Args:
        client: the client whose session carries the ``document.get`` calls.
        schedule: when to look at pending documents.
        clock: a monotonic clock (injected in tests).
        seed: for the jitter.
    """

    def __init__(
        self,
        client: DocgenClient,
        schedule: PollSchedule | None = None,
        *,
        clock: Clock = time.monotonic,
        seed: int | None = None,
    ) -> None:
        self._client = client
        self.schedule = schedule or PollSchedule()
        self._clock = clock
        self._rng = random.Random(seed)
        self._watches: dict[int, _Watch] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Rounds run so far (each is one concurrent ``get`` per due document).
        self.rounds = 0

    def _created_at(self, document: Document) -> float | None:
        # After an update the re-render starts then, not at the creation.
        created = (
            document.updated_time if document.pdf_since is not None else None
        ) or document.created_time
        if not isinstance(created, datetime):
            return None
        age = time.time() - created.timestamp()
        if created.microsecond == 0:
            # The portal gives whole seconds: the document was created up to 1 s after that,
            # and assuming the earliest moment would poll before the minimum conversion time.
            age -= 1.0
        return self._clock() - max(0.0, age)

    def watch(self, documents: Iterable[Document | int]) -> asyncio.Queue[Outcome]:
        """Start watching; every watched document's outcome arrives on the returned queue."""
        queue: asyncio.Queue[Outcome] = asyncio.Queue()
        now = self._clock()
        for item in documents:
            since: PdfSince | None = None
            if isinstance(item, Document):
                if item.pdf_state() is not PdfState.PENDING:
                    queue.put_nowait((item.id, item))
                    continue
                doc_id, due = item.id, self.schedule.first_poll(self._created_at(item), now)
                since = item.pdf_since
            else:
                doc_id, due = item, now
            watch = self._watches.get(doc_id)
            if watch is None:
                watch = self._watches[doc_id] = _Watch(due, since)
            elif since is not None:
                watch.since = since  # the stricter view: wait for the update's render
            watch.due = min(watch.due, due) if watch.queues else due
            if queue not in watch.queues:
                watch.queues.append(queue)
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pdf-poller")
        return queue

    def unwatch(self, queue: asyncio.Queue[Outcome]) -> list[Document | int]:
        """Stop delivering to ``queue``; returns what it was still waiting for."""
        pending: list[Document | int] = []
        for doc_id, watch in list(self._watches.items()):
            if queue in watch.queues:
                watch.queues.remove(queue)
                pending.append(watch.last or doc_id)
                if not watch.queues:
                    del self._watches[doc_id]
        return pending

    async def close(self) -> None:
        """Stop the loop; every watcher still waiting fails with :class:`ClientStateError`."""
        # Emptied first: the loop ends by itself even if asyncio.wait_for (Python 3.11) lets
        # the cancel slip.
        watches, self._watches = self._watches, {}
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for doc_id, watch in watches.items():
            for queue in watch.queues:
                queue.put_nowait((doc_id, ClientStateError("the client was closed")))

    async def _run(self) -> None:
        while self._watches:
            now = self._clock()
            first = min(w.due for w in self._watches.values())
            if first > now:
                self._wakeup.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), first - now)
                continue
            # Pull in documents due within a fraction of the wait they are on.
            horizon = now + self.schedule.coalesce * self.schedule.interval
            due = [i for i, w in self._watches.items() if w.due <= horizon]
            self.rounds += 1
            replies = await asyncio.gather(
                *(look(self._client, i, self._watches[i].since) for i in due),
                return_exceptions=True,
            )
            for doc_id, reply in zip(due, replies, strict=True):
                self._settle(doc_id, reply)

    def _settle(self, doc_id: int, reply: Document | BaseException) -> None:
        watch = self._watches.get(doc_id)
        if watch is None:
            return
        if isinstance(reply, Document) and reply.pdf_state(watch.since) is PdfState.PENDING:
            watch.looks += 1
            watch.last = reply
            watch.due = self._clock() + self.schedule.next_wait(watch.looks, self._rng)
            return
        if isinstance(reply, BaseException) and not isinstance(reply, BitrixError):
            raise reply  # cancellation or a bug: not a per-document outcome
        if isinstance(reply, TransportError | ResponseError):
            # Trouble the session already retried: look again later (the caller's deadline
            # bounds this).
            log.debug(
                "document %d: poll failed (%s); will look again", doc_id, type(reply).__name__
            )
            watch.looks += 1
            watch.due = self._clock() + self.schedule.next_wait(watch.looks, self._rng)
            return
        del self._watches[doc_id]
        for queue in watch.queues:
            queue.put_nowait((doc_id, reply))


async def iter_ready(
    poller: PdfPoller,
    documents: Iterable[Document | int],
    timeout: float | None,  # noqa: ASYNC109 - a deadline for the whole stream, not one await
) -> AsyncGenerator[Document, None]:
    """Yield each document once its PDF is ready or has failed (check ``pdf_failed``).

    Raises:
        ApiError: a document could not be read (e.g. it was deleted).
        PollTimeoutError: the deadline passed; ``pending`` holds the rest.
    """
    wanted = list(documents)
    remaining = len({d.id if isinstance(d, Document) else d for d in wanted})
    queue = poller.watch(wanted)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    try:
        while remaining:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                raise PollTimeoutError(poller.unwatch(queue))
            try:
                _, outcome = await asyncio.wait_for(queue.get(), left)
            except TimeoutError:
                raise PollTimeoutError(poller.unwatch(queue)) from None
            remaining -= 1
            if isinstance(outcome, BaseException):
                raise outcome
            yield outcome
    finally:
        poller.unwatch(queue)
