"""``documents.generate_many``: add -> wait for the PDF -> download, for any number of entities.

Each entity runs its own short pipeline; a bounded number run at once, so memory stays flat
whatever the input size, and their calls meet in the session, which batches them (50 adds per
request, fewer when they render slowly), paces them by the request bucket and by
``document.add``'s operating budget, and keeps each batch inside the portal's 60 s cut-off. Adds,
polls and downloads of different entities overlap.

Nothing is added twice: before re-adding after an ambiguous failure (and on resume, for entities
whose add was interrupted) the document is looked up by template and entity first.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from bitrix_docgen_async.core import validate as check
from bitrix_docgen_async.download import remove_stale_parts
from bitrix_docgen_async.errors import (
    BitrixError,
    DownloadError,
    NotFoundError,
    OutcomeUnknownError,
)
from bitrix_docgen_async.journal import Journal
from bitrix_docgen_async.models import Document
from bitrix_docgen_async.polling import iter_ready

if TYPE_CHECKING:
    from bitrix_docgen_async.client import DocgenClient

__all__ = ["GenerationResult", "Progress", "generate_many"]

log = logging.getLogger("bitrix_docgen_async.bulk")

Values = Mapping[str, Any] | Callable[[int], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]
#: Documents created this long before the first add attempt are not ours (clock skew margin).
_SKEW = 120.0


@attrs.frozen
class GenerationResult:
    """One entity's outcome.

    Attributes:
        entity_id: the CRM item.
        document: its document (None if it could not be created or was done in an earlier run).
        pdf_path: where its PDF was saved, if downloading.
        error: what went wrong, or None: a :class:`BitrixError` for anything the portal or the
            transport caused (``UnknownFieldsError`` for ``check_values``), ``OSError`` for the
            download folder, ``ValueError`` for a bad or repeated entity id or values; any other
            ``Exception`` only for a bug, logged. Never a ``BaseException`` such as cancellation.
        skipped: done by an earlier run with the same journal.
        document_id: the document's id (also known for skipped entities).
    """

    entity_id: int
    document: Document | None = None
    pdf_path: Path | None = None
    error: Exception | None = None
    skipped: bool = False
    document_id: int | None = None

    @property
    def ok(self) -> bool:
        """True when every requested step succeeded."""
        return self.error is None


@attrs.frozen
class Progress:
    """Counts handed to ``on_progress`` after every change (a snapshot; keep it if you like).

    Attributes:
        added: entities that have their document: created by
            ``crm.documentgenerator.document.add`` in this run, or found again (journal,
            lookup after an ambiguous or interrupted add).
        ready: documents whose PDF conversion finished (successfully) in this run.
        downloaded: PDFs saved in ``download_dir``.
        failed: entities whose result carries an error.
        skipped: entities a journal showed done by an earlier run.
    """

    added: int = 0
    ready: int = 0
    downloaded: int = 0
    failed: int = 0
    skipped: int = 0


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
    on_progress: Callable[[Progress], None] | None
    reconcile_delay: float
    progress: Progress = attrs.field(factory=Progress)

    def _tick(self, **counts: int) -> None:
        changes = {name: getattr(self.progress, name) + delta for name, delta in counts.items()}
        self.progress = attrs.evolve(self.progress, **changes)
        if self.on_progress is not None:
            try:
                self.on_progress(self.progress)
            except Exception:
                log.exception("on_progress raised; ignored")

    async def _values(self, entity_id: int) -> dict[str, Any]:
        if self.values is None:
            return {}
        if not callable(self.values):
            return dict(self.values)
        produced = self.values(entity_id)
        if inspect.isawaitable(produced):
            produced = await produced
        return check.optional_mapping("values", produced)

    async def find_existing(self, entity_id: int, since: float) -> Document | None:
        """The document an interrupted add may have created (the oldest one since ``since``)."""
        page = await self.client.documents.list(
            filter={
                "templateId": self.template_id,
                "entityTypeId": self.entity_type_id,
                "entityId": entity_id,
            },
            order={"id": "asc"},
        )
        for document in page.items:
            created = document.created_time
            if created is None or created.timestamp() >= since - _SKEW:
                return document
        return None

    async def add(self, entity_id: int) -> Document:
        """Add once; after an ambiguous failure look the document up before adding again."""
        values = await self._values(entity_id)
        for attempt in range(3):
            since = self.journal.intend(entity_id) if self.journal else time.time()
            try:
                return await self.client.documents.add(
                    self.template_id, self.entity_type_id, entity_id, values=values
                )
            except OutcomeUnknownError as unknown:
                log.info("entity %d: add outcome unknown; reconciling", entity_id)
                found = await self.reconcile(entity_id, since)
                if found is not None:
                    return found
                if attempt == 2:
                    raise unknown
        raise AssertionError("unreachable")

    async def reconcile(self, entity_id: int, since: float) -> Document | None:
        found = await self.find_existing(entity_id, since)
        if found is None and self.reconcile_delay > 0:
            # An add still running on the portal shows up a moment later.
            await asyncio.sleep(self.reconcile_delay)
            found = await self.find_existing(entity_id, since)
        return found

    async def document_for(self, entity_id: int) -> Document:
        """The entity's document: resumed from the journal, reconciled, or added now."""
        entry = self.journal.get(entity_id) if self.journal else None
        document: Document | None = None
        if entry is not None and entry.document_id is not None:
            try:
                document = await self.client.documents.get(entry.document_id)
            except NotFoundError:
                document = None  # deleted since: make a new one
        elif entry is not None and entry.state == "adding":
            document = await self.reconcile(entity_id, entry.intended_at or 0.0)
        if document is None:
            document = await self.add(entity_id)
        if self.journal:
            self.journal.added(entity_id, document.id)
        self._tick(added=1)
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
        self._tick(ready=1)
        return outcome

    async def one(self, entity_id: int) -> GenerationResult:
        entry = self.journal.get(entity_id) if self.journal else None
        if entry is not None and entry.state == "done":
            self._tick(skipped=1)
            path = Path(entry.pdf_path) if entry.pdf_path else None
            return GenerationResult(
                entity_id, pdf_path=path, skipped=True, document_id=entry.document_id
            )
        document: Document | None = None
        try:
            document = await self.document_for(entity_id)
            path = None
            if self.wait_pdf or self.download_dir is not None:
                document = await self.wait(document)
            if self.download_dir is not None:
                path = await self.client.documents.download(document, self.download_dir)
                self._tick(downloaded=1)
            if self.journal:
                self.journal.done(entity_id, document.id, str(path) if path else None)
            return GenerationResult(entity_id, document, path, document_id=document.id)
        except (BitrixError, OSError, ValueError, TypeError) as exc:
            if self.journal:
                self.journal.failed(entity_id, f"{type(exc).__name__}: {exc}")
            self._tick(failed=1)
            doc_id = document.id if document else None
            return GenerationResult(entity_id, document, error=exc, document_id=doc_id)


async def _ids(entity_ids: Iterable[int] | AsyncIterable[int]) -> AsyncIterator[int]:
    if isinstance(entity_ids, AsyncIterable):
        async for entity_id in entity_ids:
            yield entity_id
    else:
        for entity_id in entity_ids:
            yield entity_id


async def generate_many(
    client: DocgenClient,
    *,
    template_id: int,
    entity_type_id: int,
    entity_ids: Iterable[int] | AsyncIterable[int],
    values: Values | None = None,
    wait_pdf: bool = True,
    download_dir: str | os.PathLike[str] | None = None,
    journal: str | os.PathLike[str] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
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
    run = _Run(
        client=client,
        template_id=template_id,
        entity_type_id=int(entity_type_id),
        values=values,
        wait_pdf=wait_pdf,
        pdf_timeout=pdf_timeout,
        download_dir=Path(download_dir) if download_dir is not None else None,
        journal=(
            Journal(journal, template_id=template_id, entity_type_id=int(entity_type_id))
            if journal is not None
            else None
        ),
        on_progress=on_progress,
        reconcile_delay=reconcile_delay,
    )
    if run.journal is not None and run.download_dir is not None:
        remove_stale_parts(run.download_dir)
    results: asyncio.Queue[GenerationResult | None] = asyncio.Queue(maxsize=max_in_flight)
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()

    async def work(entity_id: int) -> None:
        try:
            result = await run.one(entity_id)
        except Exception as exc:  # a bug must not end the run or lose the entity
            log.exception("entity %d: unexpected error", entity_id)
            result = GenerationResult(entity_id, error=exc)
        finally:
            slots.release()
        await results.put(result)

    async def feed() -> None:
        seen: set[int] = set()
        try:
            async for entity_id in _ids(entity_ids):
                await slots.acquire()
                if isinstance(entity_id, bool) or not isinstance(entity_id, int) or entity_id <= 0:
                    slots.release()
                    await results.put(
                        GenerationResult(entity_id, error=ValueError("not a positive int id"))
                    )
                    continue
                if entity_id in seen:
                    slots.release()
                    await results.put(
                        GenerationResult(entity_id, error=ValueError("repeated in the input"))
                    )
                    continue
                seen.add(entity_id)
                task = asyncio.get_running_loop().create_task(work(entity_id))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*list(tasks))
        finally:
            await results.put(None)

    feeder = asyncio.get_running_loop().create_task(feed())
    try:
        while (result := await results.get()) is not None:
            yield result
        await feeder
    finally:
        if not feeder.done():
            feeder.cancel()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(feeder, *tasks, return_exceptions=True)
        if run.journal is not None:
            run.journal.close()
