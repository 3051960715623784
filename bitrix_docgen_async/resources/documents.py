"""``client.documents``: ``crm.documentgenerator.document.*``."""

from __future__ import annotations

import builtins
import contextlib
import functools
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from bitrix_docgen_async.core import validate as check
from bitrix_docgen_async.core.convert import structure, structure_fields
from bitrix_docgen_async.core.pdf import PdfSince
from bitrix_docgen_async.errors import OutcomeUnknownError
from bitrix_docgen_async.fieldcheck import FieldChecker
from bitrix_docgen_async.models import Document, FieldDescription, Page
from bitrix_docgen_async.resources.base import PREFIX, Resource, settle_many, unwrap
from bitrix_docgen_async.resources.listing import Listing
from bitrix_docgen_async.resources.reconcile import KeyedLocks, find_added
from bitrix_docgen_async.session import CommandResult
from bitrix_docgen_async.streaming import DEFAULT_CHUNK, FileStream, open_file
from bitrix_docgen_async.workflows.bulk import (
    GenerationResult,
    ProgressCallback,
    Values,
    generate_many,
)
from bitrix_docgen_async.workflows.download import Kind
from bitrix_docgen_async.workflows.journal import Journal
from bitrix_docgen_async.workflows.polling import iter_ready

if TYPE_CHECKING:
    from bitrix_docgen_async.client import DocgenClient

__all__ = ["Documents"]

FileLike = bytes | str | os.PathLike[str]


#: How many times a reconciling add is sent when every lookup says the document is absent.
_ADD_ATTEMPTS = 3


class Documents(Resource):
    """Documents generated from templates for CRM items."""

    def __init__(self, client: DocgenClient) -> None:
        super().__init__(client)
        # Reconciling adds of one (template, entity type, entity) run one at a time, so that
        # one never adopts the document another made.
        self._adding = KeyedLocks()

    @functools.cached_property
    def field_checker(self) -> FieldChecker:
        """Each template's field names, read once for ``check_values`` (per client)."""
        return FieldChecker(self._client)

    async def add(
        self,
        template_id: int,
        entity_type_id: int,
        entity_id: int,
        *,
        values: Mapping[str, Any] | None = None,
        stamps_enabled: bool = False,
        fields: Mapping[str, Any] | None = None,
        reconcile: bool = False,
        reconcile_delay: float = 2.0,
        check_values: bool = False,
    ) -> Document:
        """Generate a document (``crm.documentgenerator.document.add``).

        Not idempotent: every successful call creates a document and uses up a number. A call
        that fails ambiguously raises :class:`OutcomeUnknownError` rather than being resent,
        unless ``reconcile`` is set.

        With ``reconcile=True`` the add is idempotent for the caller: after an ambiguous
        failure the document is looked up (``crm.documentgenerator.document.list`` by
        template and entity, created since the call began by the portal's own clock, newest
        first, every page that may hold it) and returned; the add is sent again only when the
        lookup, repeated after ``reconcile_delay``, finds nothing (up to 3 sends in all).
        Reconciling adds for the same template and entity run one at a time in this client.

        Args:
            template_id: the template to render.
            entity_type_id: an ``EntityType`` or smart-process type id; it must be one of the
                template's bindings.
            entity_id: the CRM item (the portal does not check that it exists).
            values: placeholder values that override the CRM data.
            stamps_enabled: put the company's stamps and signatures on it.
            fields: field descriptors for values (``{code: {"TYPE": ..., "FORMAT": ...}}``).
            reconcile: resolve an ambiguous failure by looking the document up (see above).
            reconcile_delay: seconds between a lookup that found nothing and the second one (an
                add still running on the portal shows up a moment later).
            check_values: check the names in ``values`` against the template's fields first
                (``crm.documentgenerator.template.getfields``, read once per template and
                client); the portal itself ignores an unknown name silently.

        Raises:
            OutcomeUnknownError: without ``reconcile``, after an ambiguous failure; with it,
                when three sends failed ambiguously and no lookup found a document.
            UnknownFieldsError: with ``check_values``, a name in ``values`` is no field of the
                template (the closest field names are in the error); nothing was added.
        """
        params: dict[str, Any] = {
            "templateId": check.positive_id("template_id", template_id),
            "entityTypeId": check.entity_type("entity_type_id", entity_type_id),
            "entityId": check.positive_id("entity_id", entity_id),
            "stampsEnabled": 1 if check.flag("stamps_enabled", stamps_enabled) else 0,
        }
        if values:
            params["values"] = check.optional_mapping("values", values)
        if fields:
            params["fields"] = check.optional_mapping("fields", fields)
        if check_values:
            await self.field_checker.check(template_id, entity_type_id, values)
        if not check.flag("reconcile", reconcile):
            return await self._one(PREFIX + "document.add", params, "document", Document)
        if not reconcile_delay >= 0:
            raise ValueError(f"reconcile_delay must be >= 0, got {reconcile_delay!r}")
        return await self._add_reconciled(params, None, reconcile_delay)

    async def _add_reconciled(
        self, params: dict[str, Any], since: float | None, delay: float
    ) -> Document:
        """``document.add`` at most once per success (see :meth:`add`).

        Args:
            params: the add's parameters (checked).
            since: wall-clock time of the first attempt, if it was before this call (a
                journal's intent); now otherwise.
            delay: seconds between two lookups that find nothing.
        """
        key = (params["templateId"], params["entityTypeId"], params["entityId"])
        async with self._adding.hold(key):
            first = time.time() if since is None else since
            for attempt in range(_ADD_ATTEMPTS):
                try:
                    return await self._one(PREFIX + "document.add", params, "document", Document)
                except OutcomeUnknownError:
                    found = await self._find_added(key, first, delay)
                    if found is not None or attempt == _ADD_ATTEMPTS - 1:
                        if found is None:
                            raise
                        return found
        raise AssertionError("unreachable")

    async def _find_added(
        self, key: tuple[int, int, int], since: float, delay: float
    ) -> Document | None:
        """The document an add of ``key`` begun at ``since`` made; looked for twice if absent."""
        found = await find_added(self._client.call_full, *key, since)
        if found is None and delay > 0:
            # An add still running on the portal commits a moment later.
            await self._client.session.limiter.sleep(delay)
            found = await find_added(self._client.call_full, *key, since)
        return found

    async def get(self, document_id: int) -> Document:
        """One document, with fresh ``*Machine`` URLs (``crm.documentgenerator.document.get``)."""
        params = {"id": check.positive_id("document_id", document_id)}
        return await self._one(PREFIX + "document.get", params, "document", Document)

    async def get_many(
        self, document_ids: Iterable[int], *, return_exceptions: bool = False
    ) -> list[Document]:
        """Several documents, in the order of ``document_ids`` (one ``document.get`` each).

        The reads are batched (50 per request) and awaited as one, without a task or a future
        per document (:meth:`~bitrix_docgen_async.DocgenClient.call_many`): for many ids this
        costs less CPU than ``asyncio.gather`` over :meth:`get`. An id given twice is read
        twice. Every id is checked before anything is sent.

        Args:
            document_ids: the documents to read.
            return_exceptions: put a failed read's exception (e.g. ``NotFoundError``) in its
                place in the list instead of raising; the list is then typed ``list[Document]``
                but may hold exceptions, so check each item.

        Raises:
            ExceptionGroup: without ``return_exceptions``, when any read failed: each failed
                read's exception (the portal's error, or a ``ResponseError`` when the reply
                does not fit :class:`Document`), with a note naming its document id; the
                documents that were read are dropped. Use ``except* NotFoundError``.
        """
        ids = [check.positive_id("document_id", document_id) for document_id in document_ids]
        method = PREFIX + "document.get"
        # Each reply becomes a Document as it arrives: its wire JSON is dropped at once.
        outcomes = await self._client._read_many(
            method,
            [{"id": i} for i in ids],
            lambda result: structure(unwrap(result, "document", method), Document),
        )
        return settle_many(
            method,
            outcomes,
            return_exceptions=return_exceptions,
            label=lambda index: f"document {ids[index]}",
        )

    async def update(
        self,
        document_id: int,
        *,
        values: Mapping[str, Any] | None = None,
        stamps_enabled: bool | None = None,
    ) -> Document:
        """Re-render a document with new values (``crm.documentgenerator.document.update``).

        The portal's default for ``stampsEnabled`` on update is 1; it is sent only if given.

        The portal converts the new render to PDF afterwards, and until that is done its
        ``pdfUrl`` may still point at the previous render's PDF
        (docs/portal.md#where-the-sources-disagree). So the
        document's ``pdfId`` is read first (one ``crm.documentgenerator.document.list`` row,
        batched like any call), and the document returned carries it as ``pdf_since``:
        ``wait_for_pdf``, ``iter_pdf_ready``, ``download`` and ``Document.pdf_ready`` then count
        only a PDF with another ``pdfId``. (An update that someone else makes between that read
        and this update could still be taken for this one's render.)
        """
        params: dict[str, Any] = {"id": check.positive_id("document_id", document_id)}
        if values is not None:
            params["values"] = check.optional_mapping("values", values)
        if stamps_enabled is not None:
            params["stampsEnabled"] = 1 if check.flag("stamps_enabled", stamps_enabled) else 0
        before = await self.list(filter={"id": document_id})
        previous = next((d.pdf_id for d in before.items if d.id == document_id), None)
        updated = await self._one(PREFIX + "document.update", params, "document", Document)
        return attrs.evolve(updated, pdf_since=PdfSince(previous))

    async def delete(self, document_id: int) -> None:
        """Delete a document (``crm.documentgenerator.document.delete``)."""
        params = {"id": check.positive_id("document_id", document_id)}
        await self._send(PREFIX + "document.delete", params)

    def list(
        self,
        *,
        filter: Mapping[str, Any] | None = None,
        order: Mapping[str, str] | None = None,
        select: list[str] | None = None,
    ) -> Listing[Document]:
        """Documents, 50 per page (``crm.documentgenerator.document.list``).

        Args:
            filter: e.g. ``{"entityTypeId": 2, "entityId": 10, ">=id": 100}``.
            order: e.g. ``{"id": "desc"}``.
            select: fields to return (default all).
        """
        params = check.list_params(filter, order, select)
        return Listing(self._client.call_full, PREFIX + "document.list", params, _document_page)

    async def get_fields(
        self, document_id: int, *, values: Mapping[str, Any] | None = None
    ) -> dict[str, FieldDescription]:
        """A document's fields (``crm.documentgenerator.document.getfields``).

        ``values`` asks "what if": the document itself is not changed.
        """
        params: dict[str, Any] = {"id": check.positive_id("document_id", document_id)}
        if values:
            params["values"] = check.optional_mapping("values", values)
        reply = await self._send(PREFIX + "document.getfields", params)
        return structure_fields(unwrap(reply.result, "documentFields", "document.getfields"))

    async def enable_public_url(self, document_id: int, enabled: bool = True) -> str | None:
        """Turn the public link on (returns it) or off (returns None).

        Calls ``crm.documentgenerator.document.enablepublicurl``.
        """
        params = {
            "id": check.positive_id("document_id", document_id),
            "status": 1 if check.flag("enabled", enabled) else 0,
        }
        reply = await self._send(PREFIX + "document.enablepublicurl", params)
        result = reply.result
        url = result.get("publicUrl") if isinstance(result, Mapping) else None
        return url if isinstance(url, str) and url else None

    async def upload(
        self,
        entity_type_id: int,
        entity_id: int,
        file: FileLike,
        *,
        region: str,
        title: str,
        number: str,
        pdf: FileLike | None = None,
        image: FileLike | None = None,
    ) -> Document:
        """Attach a ready .docx (and optionally its PDF and image) to a CRM item.

        Calls ``crm.documentgenerator.document.upload``; files are base64-encoded here.
        """
        fields: dict[str, Any] = {
            "entityTypeId": check.entity_type("entity_type_id", entity_type_id),
            "entityId": check.positive_id("entity_id", entity_id),
            "fileContent": check.file_payload("file", file, default_name="document.docx")[1],
            "region": check.text("region", region),
            "title": check.text("title", title),
            "number": check.text("number", number),
        }
        if pdf is not None:
            fields["pdfContent"] = check.file_payload("pdf", pdf, default_name="d.pdf")[1]
        if image is not None:
            fields["imageContent"] = check.file_payload("image", image, default_name="d.png")[1]
        return await self._one(PREFIX + "document.upload", {"fields": fields}, "document", Document)

    async def download(
        self,
        document: Document | int,
        dest: str | os.PathLike[str],
        kind: Kind = "pdf",
        *,
        filename: str | None = None,
    ) -> Path:
        """Stream a document's PDF, .docx or image into the folder ``dest``.

        ``dest`` is always a folder, created if missing, even when its name has a dot; the file
        is ``document-{id}.{ext}`` unless ``filename`` names it. The file appears only when
        complete (written beside it, then renamed) and with the umask's mode; its first bytes
        must be the kind asked for. A stale URL is refreshed with ``document.get``. Returns
        the file's path.

        Raises:
            DownloadError: no file yet (or the conversion failed, or after an update the new
                render is not converted yet), the portal refused, or it answered 200 with
                something else than the file (an error envelope, an HTML login page).
        """
        return await self._client.downloader.download(document, dest, kind, filename=filename)

    def generate_many(
        self,
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
        check_values: bool = False,
    ) -> AsyncIterator[GenerationResult]:
        """Generate one document per entity (and wait for / download the PDFs), streaming results.

        Results arrive as entities finish, in no set order; an entity's failure is reported in
        its result and never stops the run. Only the run as a whole can fail: a journal that
        cannot be used raises :class:`JournalError` at the first iteration, and an exception
        raised by ``entity_ids`` itself is raised once the entities in flight are finished.
        Adds are batched and paced by the request bucket and ``document.add``'s operating
        budget.

        A consumer that stops reading pauses the run: an entity keeps its slot until its result
        is handed over. Closing the stream (``aclose()``, ``contextlib.aclosing``, cancelling
        the consumer) cancels the work in flight within a few seconds; calls not yet sent are
        not sent.

        Args:
            template_id: the template to render.
            entity_type_id: the CRM entity type of every entity.
            entity_ids: any iterable or async iterable of ids, of any length (read lazily).
            values: placeholder values: one mapping for all, or a function of the entity id
                (it may be async).
            wait_pdf: wait for each PDF (implied by ``download_dir``).
            download_dir: save each PDF in this folder (created if missing) as
                ``document-{id}.pdf``.
            journal: an SQLite file (or any
            :class:`~bitrix_docgen_async.workflows.journal.Journal`); a
                re-run with it skips finished entities and, for adds interrupted by a crash,
                looks the document up before adding again. It is bound to this portal, caller,
                template and entity type, and one run at a time may use it.
            on_progress: a function or coroutine function given a :class:`Progress` snapshot
                (counts, total, rate, ETA) a few times per second at most, and once at the end.
            max_in_flight: entities worked on at once (bounds memory; enough to fill batches
                and keep the operating budget in use).
            pdf_timeout: seconds to wait for one document's PDF.
            reconcile_delay: after an ambiguous add that the lookup did not find, wait this long
                and look again before adding once more.
            check_values: check the names in ``values`` against the template's fields
                (``crm.documentgenerator.template.getfields``, read once). A mapping is checked
                before anything is added: the iterator raises :class:`UnknownFieldsError` on its
                first step. What a function returns is checked per entity: an unknown name is
                that entity's error.
        """
        if check_values:
            return self._checked_run(
                template_id=template_id,
                entity_type_id=entity_type_id,
                entity_ids=entity_ids,
                values=values,
                wait_pdf=wait_pdf,
                download_dir=download_dir,
                journal=journal,
                on_progress=on_progress,
                max_in_flight=max_in_flight,
                pdf_timeout=pdf_timeout,
                reconcile_delay=reconcile_delay,
            )
        return generate_many(
            self._client,
            template_id=template_id,
            entity_type_id=entity_type_id,
            entity_ids=entity_ids,
            values=values,
            wait_pdf=wait_pdf,
            download_dir=download_dir,
            journal=journal,
            on_progress=on_progress,
            max_in_flight=max_in_flight,
            pdf_timeout=pdf_timeout,
            reconcile_delay=reconcile_delay,
        )

    async def _checked_run(
        self, *, template_id: int, entity_type_id: int, values: Values | None, **run: Any
    ) -> AsyncIterator[GenerationResult]:
        checker = self.field_checker
        if callable(values):
            values = checker.checked(template_id, entity_type_id, values)
        else:
            await checker.check(template_id, entity_type_id, values)
        results = generate_many(
            self._client,
            template_id=template_id,
            entity_type_id=entity_type_id,
            values=values,
            **run,
        )
        try:
            async for result in results:
                yield result
        finally:
            close = getattr(results, "aclose", None)  # an async generator: end its run now
            if close is not None:
                await close()

    def open(
        self, document: Document | int, kind: Kind = "pdf", *, chunk_size: int = DEFAULT_CHUNK
    ) -> contextlib.AbstractAsyncContextManager[FileStream]:
        """Stream a document's PDF, .docx or image without a file: ``async with`` it.

        ``async with client.documents.open(doc, "pdf") as stream:`` gives a
        :class:`~bitrix_docgen_async.streaming.FileStream` with ``content_type`` and ``length``;
        ``async for chunk in stream`` yields the bytes (memory stays flat whatever the size).
        Paced and retried like :meth:`download`: the GET of the ``*Machine`` URL takes a
        request token, a stale URL is refreshed with ``crm.documentgenerator.document.get``,
        and the first bytes must be the kind asked for before the block is entered.

        Raises:
            DownloadError: no file yet (or the conversion failed), the portal refused, or it
                answered 200 with something else than the file.
            TransportError: the connection broke while the chunks were being read.
        """
        return open_file(self._client, document, kind, chunk_size=chunk_size)

    def iter_pdf_ready(
        self, documents: Iterable[Document | int], *, timeout: float | None = 300.0
    ) -> AsyncIterator[Document]:
        """Yield each document as soon as its PDF is ready, or its conversion failed.

        One polling loop serves every waiting document: each round looks at the due ones with
        ``document.get`` calls batched 50 per request. Pass the :class:`Document` objects
        ``add`` returned where you can: their creation time saves a first look before the
        minimum conversion time.

        Raises:
            PollTimeoutError: at the deadline, with ``pending`` (the rest).
            ApiError: a document could not be read (deleted, say).
        """
        return iter_ready(self._client.pdf_poller, _watch_list(documents), timeout)

    async def wait_for_pdf(
        self,
        documents: Iterable[Document | int],
        *,
        timeout: float | None = 300.0,  # noqa: ASYNC109 - the public API of DESIGN.md §3
    ) -> builtins.list[Document]:
        """Wait until every document's PDF is ready or failed; the results in input order.

        Check ``Document.pdf_failed`` (with ``transformation_error_code``/``_message``) for
        conversions that failed.
        """
        wanted = _watch_list(documents)
        done: dict[int, Document] = {}
        async for document in iter_ready(self._client.pdf_poller, wanted, timeout):
            done[document.id] = document
        return [done[d.id if isinstance(d, Document) else d] for d in wanted]


def _watch_list(documents: Iterable[Document | int]) -> list[Document | int]:
    if isinstance(documents, Document | int):
        raise TypeError("pass a list of documents or ids, not a single one")
    items = list(documents)
    for item in items:
        if not isinstance(item, Document):
            check.positive_id("document id", item)
    return items


def _document_page(reply: CommandResult) -> Page[Document]:
    rows = unwrap(reply.result, "documents", "document.list")
    items = tuple(structure(row, Document) for row in (rows or []))
    return Page(items=items, total=reply.total, next=reply.next)
