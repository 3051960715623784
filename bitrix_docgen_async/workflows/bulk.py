"""``documents.generate_many``: add -> wait for the PDF -> download, for any number of entities.

Each entity runs its own short pipeline; at most ``max_in_flight`` run at once, and their calls
meet in the session, which batches them (50 adds per request, fewer when they render slowly),
paces them by the request bucket and by ``document.add``'s operating budget, and keeps each
batch inside the portal's 60 s cut-off. Adds, polls and downloads of different entities overlap.

Back-pressure: an entity keeps its slot until its result is handed to the consumer or queued in
a small buffer, so a consumer that pauses pauses the run (nothing more is added, no task piles
up) and memory stays flat whatever the input size.

Closing the stream (``aclose()``, leaving ``contextlib.aclosing``, cancelling the consumer)
cancels every entity's pipeline and returns within a bound; calls not yet sent are never sent.

Nothing is added twice: adds go through ``documents.add(reconcile=True)``'s machinery (after an
ambiguous failure the document is looked up before adding again), and on resume an entity whose
add was interrupted is looked up first.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from bitrix_docgen_async.core import validate as check
from bitrix_docgen_async.errors import (
    BitrixError,
    DownloadError,
    InternalError,
    InvalidEntityError,
    JournalError,
    NotFoundError,
    StorageError,
)
from bitrix_docgen_async.models import Document
from bitrix_docgen_async.workflows.bulk_progress import Counts, Progress, ProgressCallback, Reporter
from bitrix_docgen_async.workflows.download import remove_stale_parts
from bitrix_docgen_async.workflows.journal import Journal, JournalEntry, RunBinding, SqliteJournal
from bitrix_docgen_async.workflows.polling import iter_ready

if TYPE_CHECKING:
    from bitrix_docgen_async.client import DocgenClient

__all__ = ["GenerationResult", "Progress", "ProgressCallback", "generate_many"]

log = logging.getLogger("bitrix_docgen_async.workflows.bulk")

Values = Mapping[str, Any] | Callable[[int], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]

#: Results waiting for the consumer beyond those of the entities in flight.
_BUFFER = 16
#: Closing waits this long for cancelled pipelines to end before it gives up on them.
_CLOSE_TIMEOUT = 5.0


@attrs.frozen
class GenerationResult:
    """One entity's outcome.

    Attributes:
        entity_id: the CRM item.
        document: its document (None if it could not be created or was done in an earlier run).
        pdf_path: where its PDF was saved, if downloading.
        error: what went wrong, or None; always one of the library's errors: the portal's or
            the transport's (``UnknownFieldsError`` for ``check_values``),
            :class:`~bitrix_docgen_async.StorageError` (also an ``OSError``) for the download
            folder, :class:`~bitrix_docgen_async.InvalidEntityError` (also a ``ValueError``)
            for a bad or repeated entity id or refused values, and
            :class:`~bitrix_docgen_async.InternalError` for anything unexpected (a bug here
            or in a ``values`` function; logged with its traceback). The original
            exception, where there was one, is its ``__cause__``. Never a cancellation.
        skipped: done by an earlier run with the same journal (or, with a shared journal,
            being done by another worker right now).
        document_id: the document's id (also known for skipped entities).
    """

    entity_id: int
    document: Document | None = None
    pdf_path: Path | None = None
    error: BitrixError | None = None
    skipped: bool = False
    document_id: int | None = None

    @property
    def ok(self) -> bool:
        """True when every requested step succeeded."""
        return self.error is None


@attrs.define
class _Run:
    client: DocgenClient
    template_id: int
    entity_type_id: int
    values: Values | None
    wait_pdf: bool
    pdf_timeout: float
    download_dir: Path | None
    journal: Journal | None
    reconcile_delay: float
    counts: Counts = attrs.field(factory=Counts)

    async def _values(self, entity_id: int) -> dict[str, Any]:
        if self.values is None:
            return {}
        if not callable(self.values):
            return dict(self.values)
        produced = self.values(entity_id)
        if inspect.isawaitable(produced):
            produced = await produced
        return check.optional_mapping("values", produced)

    def _key(self, entity_id: int) -> tuple[int, int, int]:
        return (self.template_id, self.entity_type_id, entity_id)

    async def _add(self, entity_id: int) -> Document:
        """Add once; an ambiguous failure is reconciled by the shared lookup."""
        values = await self._values(entity_id)
        since = await self.journal.intend(entity_id) if self.journal else None
        params: dict[str, Any] = {
            "templateId": self.template_id,
            "entityTypeId": self.entity_type_id,
            "entityId": entity_id,
            "stampsEnabled": 0,
        }
        if values:
            params["values"] = values
        return await self.client.documents._add_reconciled(params, since, self.reconcile_delay)

    async def _resumed(self, entity_id: int, entry: JournalEntry) -> Document | None:
        """The document an earlier run recorded (checked) or may have made (looked up)."""
        if entry.document_id is not None:
            try:
                document = await self.client.documents.get(entry.document_id)
            except NotFoundError:
                return None  # deleted since: make a new one
            actual = (document.template_id, document.entity_type_id, document.entity_id)
            if actual != self._key(entity_id):
                raise JournalError(
                    f"the journal records document {document.id} for entity {entity_id}, but "
                    f"on this portal it belongs to template {actual[0]}, entity type "
                    f"{actual[1]}, entity {actual[2]}: not adopted"
                )
            return document
        if entry.state == "adding" and entry.intended_at is not None:
            return await self.client.documents._find_added(
                self._key(entity_id), entry.intended_at, self.reconcile_delay
            )
        return None

    async def document_for(self, entity_id: int, entry: JournalEntry | None) -> Document:
        """The entity's document: resumed from the journal, reconciled, or added now."""
        document = await self._resumed(entity_id, entry) if entry is not None else None
        if document is None:
            document = await self._add(entity_id)
        if self.journal:
            await self.journal.record_added(entity_id, document.id)
        self.counts.added += 1
        return document

    async def wait(self, document: Document) -> Document:
        """The document once its PDF is ready: the poller's one rule, as ``wait_for_pdf``.

        Raises:
            PollTimeoutError: no PDF within ``pdf_timeout`` (``pending`` holds the document).
            DownloadError: the portal reports that the conversion failed.
        """
        ready = iter_ready(self.client.pdf_poller, [document], self.pdf_timeout)
        async with contextlib.aclosing(ready) as outcomes:
            outcome = await anext(outcomes)
        if outcome.pdf_failed:
            raise DownloadError(
                outcome.id,
                "pdf",
                "its PDF conversion failed: "
                f"{outcome.transformation_error_code} {outcome.transformation_error_message}",
            )
        self.counts.ready += 1
        return outcome

    async def one(self, entity_id: int) -> GenerationResult:
        if self.journal is None:
            return await self._work(entity_id, None)
        claim = await self.journal.claim(entity_id)
        try:
            if claim.held_elsewhere:
                return GenerationResult(entity_id, skipped=True)
            entry = claim.entry
            if entry is not None and entry.state == "done":
                self.counts.skipped += 1
                self.counts.done += 1
                path = Path(entry.pdf_path) if entry.pdf_path else None
                return GenerationResult(
                    entity_id, pdf_path=path, skipped=True, document_id=entry.document_id
                )
            return await self._work(entity_id, entry)
        finally:
            await self.journal.release(entity_id)

    async def _work(self, entity_id: int, entry: JournalEntry | None) -> GenerationResult:
        document: Document | None = None
        try:
            document = await self.document_for(entity_id, entry)
            path = None
            if self.wait_pdf or self.download_dir is not None:
                document = await self.wait(document)
            if self.download_dir is not None:
                path = await self.client.documents.download(document, self.download_dir)
                self.counts.downloaded += 1
            if self.journal:
                await self.journal.record_done(entity_id, document.id, str(path) if path else None)
            self.counts.done += 1
            return GenerationResult(entity_id, document, path, document_id=document.id)
        except (BitrixError, OSError, ValueError, TypeError) as exc:
            error = _library_error(exc)
            if self.journal and not isinstance(error, JournalError):
                with contextlib.suppress(JournalError):
                    await self.journal.record_failed(entity_id, f"{type(error).__name__}: {error}")
            self.counts.failed += 1
            doc_id = document.id if document else None
            return GenerationResult(entity_id, document, error=error, document_id=doc_id)


def _library_error(error: Exception) -> BitrixError:
    """``error`` as the library's own class (an entity's result carries only those).

    A :class:`BitrixError` stays as it is; a refused value (``ValueError``/``TypeError``)
    becomes :class:`InvalidEntityError`, a file or folder that cannot be written
    :class:`StorageError`, and anything else (a bug) :class:`InternalError` naming only its
    class. The original is the ``__cause__``.
    """
    if isinstance(error, BitrixError):
        return error
    if isinstance(error, OSError):
        return StorageError.wrapping(error)
    wrapped: BitrixError
    if isinstance(error, ValueError | TypeError):
        wrapped = InvalidEntityError(f"{type(error).__name__}: {error}")
    else:
        wrapped = InternalError(f"unexpected {type(error).__name__} (see the log)")
    wrapped.__cause__ = error
    return wrapped


async def _ids(entity_ids: Iterable[int] | AsyncIterable[int]) -> AsyncIterator[int]:
    if isinstance(entity_ids, AsyncIterable):
        async for entity_id in entity_ids:
            yield entity_id
    else:
        for entity_id in entity_ids:
            yield entity_id


def _binding(client: DocgenClient, template_id: int, entity_type_id: int) -> RunBinding:
    """The portal and caller a journal is bound to (no secret: a user id or an app id)."""
    auth = client.auth
    user = getattr(auth, "user_id", None)
    app = getattr(auth, "client_id", None)
    if user is not None:
        identity = f"webhook user {user}"
    elif app is not None:
        identity = f"application {app}"
    else:
        identity = type(auth).__name__
    return RunBinding(auth.origin, identity, template_id, entity_type_id)


def _journal(journal: str | os.PathLike[str] | Journal | None) -> Journal | None:
    if journal is None or isinstance(journal, Journal):
        return journal
    if isinstance(journal, str | os.PathLike):
        return SqliteJournal(journal)
    raise TypeError(f"journal must be a path or a Journal, got {type(journal).__name__}")


@attrs.frozen
class _End:
    """The feeder is done; ``error`` is what the input raised, if anything."""

    error: BaseException | None = None


async def generate_many(
    client: DocgenClient,
    *,
    template_id: int,
    entity_type_id: int,
    entity_ids: Iterable[int] | AsyncIterable[int],
    values: Values | None = None,
    wait_pdf: bool = True,
    download_dir: str | os.PathLike[str] | None = None,
    journal: str | os.PathLike[str] | Journal | None = None,
    on_progress: ProgressCallback | None = None,
    max_in_flight: int = 200,
    pdf_timeout: float = 600.0,
    reconcile_delay: float = 2.0,
) -> AsyncIterator[GenerationResult]:
    """See :meth:`Documents.generate_many`."""
    check.positive_id("template_id", template_id)
    check.entity_type("entity_type_id", entity_type_id)
    check.positive_id("max_in_flight", max_in_flight)
    if values is not None and not callable(values):
        values = check.optional_mapping("values", values)
    total: int | None = None
    if not isinstance(entity_ids, AsyncIterable):
        with contextlib.suppress(TypeError):
            total = len(entity_ids)  # type: ignore[arg-type]
    store = _journal(journal)
    run = _Run(
        client=client,
        template_id=template_id,
        entity_type_id=int(entity_type_id),
        values=values,
        wait_pdf=wait_pdf,
        pdf_timeout=pdf_timeout,
        download_dir=Path(download_dir) if download_dir is not None else None,
        journal=store,
        reconcile_delay=reconcile_delay,
    )
    if store is not None:
        await store.open(_binding(client, template_id, int(entity_type_id)))
    reporter = Reporter(on_progress, run.counts, total) if on_progress is not None else None
    try:
        if store is not None and run.download_dir is not None:
            remove_stale_parts(run.download_dir)
        # Closed explicitly: an abandoned inner generator would be finalised only by the
        # garbage collector, its tasks running on meanwhile.
        async with contextlib.aclosing(
            _pipeline(run, entity_ids, max_in_flight, reporter)
        ) as results:
            async for result in results:
                yield result
        if reporter is not None:
            await reporter.report(force=True)
    finally:
        if store is not None:
            await store.close()


async def _pipeline(
    run: _Run,
    entity_ids: Iterable[int] | AsyncIterable[int],
    max_in_flight: int,
    reporter: Reporter | None,
) -> AsyncGenerator[GenerationResult, None]:
    loop = asyncio.get_running_loop()
    results: asyncio.Queue[GenerationResult | _End] = asyncio.Queue(
        maxsize=min(_BUFFER, max_in_flight)
    )
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()

    async def work(entity_id: int) -> None:
        try:
            try:
                result = await run.one(entity_id)
            except BitrixError as exc:  # e.g. the journal's claim: this entity fails alone
                run.counts.failed += 1
                result = GenerationResult(entity_id, error=exc)
            except Exception as exc:  # a bug must not end the run or lose the entity
                log.exception("entity %d: unexpected error", entity_id)
                run.counts.failed += 1
                result = GenerationResult(entity_id, error=_library_error(exc))
            # The slot is held until the result is handed over: a paused consumer pauses
            # the run.
            await results.put(result)
        finally:
            slots.release()

    async def feed() -> None:
        seen: set[int] = set()
        error: BaseException | None = None
        try:
            async for entity_id in _ids(entity_ids):
                if isinstance(entity_id, bool) or not isinstance(entity_id, int) or entity_id <= 0:
                    run.counts.failed += 1
                    await results.put(
                        GenerationResult(
                            entity_id, error=InvalidEntityError("not a positive int id")
                        )
                    )
                    continue
                if entity_id in seen:
                    run.counts.failed += 1
                    await results.put(
                        GenerationResult(
                            entity_id, error=InvalidEntityError("repeated in the input")
                        )
                    )
                    continue
                seen.add(entity_id)
                await slots.acquire()
                task = loop.create_task(work(entity_id))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except Exception as exc:  # the input itself failed: finish what runs, then raise it
            error = exc
        if tasks:
            await asyncio.wait(list(tasks))
        await results.put(_End(error))

    feeder = loop.create_task(feed())
    if reporter is not None:
        reporter.start()
    try:
        while not isinstance(item := await results.get(), _End):
            yield item
        if item.error is not None:
            raise item.error
    finally:
        await _shutdown(feeder, tasks, reporter)


async def _shutdown(
    feeder: asyncio.Task[None], tasks: set[asyncio.Task[None]], reporter: Reporter | None
) -> None:
    """Cancel the feeder and every pipeline; wait for them within ``_CLOSE_TIMEOUT``.

    Nothing here waits on the result buffer, so a consumer that stopped reading never blocks
    the close. Cancelled pipelines drop their queued calls: the session never sends a call
    whose caller gave up.
    """
    pending: list[asyncio.Task[None]] = [feeder, *tasks]
    stopped = reporter.stop() if reporter is not None else None
    if stopped is not None:
        pending.append(stopped)
    for task in pending:
        task.cancel()
    live = [task for task in pending if not task.done()]
    if not live:
        return
    _, stuck = await asyncio.wait(live, timeout=_CLOSE_TIMEOUT)
    if stuck:
        log.warning("%d pipeline task(s) did not stop within %g s", len(stuck), _CLOSE_TIMEOUT)
    for task in live:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.debug("pipeline task ended with %r", task.exception())
