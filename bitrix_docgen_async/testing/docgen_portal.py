"""The docgen side of :class:`FakePortal` that tests use directly: seeding and read-only views.

``seed_template``/``seed_document`` store what ``template.add``/``document.add`` would, without
a request; ``templates``/``documents`` show the stored records in their raw ``get`` shapes (the
wire, camelCase: what a test of the portal or the converter asserts on) and ``models`` shows
them as the client's models (``model_views.py``);
``document_file``/``template_file`` give the exact bytes the machine URLs serve; and
``bindings_for``/``pending_events`` are the hook of event delivery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from bitrix_docgen_async.testing.conversion import Conversion
from bitrix_docgen_async.testing.documents import create_document, register_documents
from bitrix_docgen_async.testing.downloads import UrlSigner, register_downloads
from bitrix_docgen_async.testing.events import register_events
from bitrix_docgen_async.testing.files import build_docx
from bitrix_docgen_async.testing.model_views import PortalModels
from bitrix_docgen_async.testing.numerators import store_numerator
from bitrix_docgen_async.testing.offline import register_offline
from bitrix_docgen_async.testing.records import EventBinding, PendingEvent
from bitrix_docgen_async.testing.shapes import document_wire, template_wire
from bitrix_docgen_async.testing.state import (
    AuthInfo,
    CallContext,
    MethodRegistry,
    PortalError,
    PortalState,
)
from bitrix_docgen_async.testing.templates import register_templates, store_template
from bitrix_docgen_async.testing.uploads import register_upload

if TYPE_CHECKING:
    from bitrix_docgen_async.testing.portal import FakePortal

__all__ = ["WEBHOOK_USER", "DocgenPortal"]

#: The user the portal's webhook belongs to (and runs as).
WEBHOOK_USER = 1
_FILE_KINDS = ("docx", "pdf", "image")
_T = TypeVar("_T")


class DocgenPortal:
    """Seeding helpers and views over a portal's docgen state (a base of :class:`FakePortal`)."""

    state: PortalState
    registry: MethodRegistry
    webhook_code: str
    conversion: Conversion
    signer: UrlSigner

    def init_docgen(
        self,
        *,
        clock: Callable[[], float],
        seed: int,
        pdf_delay: float,
        pdf_jitter: float,
        pdf_failure_rate: float,
    ) -> None:
        """Register the template, document, file and event methods; set up the conversion."""
        for register in (
            register_templates,
            register_documents,
            register_upload,
            register_downloads,
            register_events,
            register_offline,
        ):
            register(self.registry)
        self.conversion = Conversion(
            delay=pdf_delay,
            jitter=pdf_jitter,
            failure_rate=pdf_failure_rate,
            seed=seed,
            clock=clock,
        )
        self.signer = UrlSigner()

    def seed_template(
        self,
        name: str = "Invoice",
        *,
        numerator_id: int | None = None,
        entity_type_ids: tuple[int | str, ...] = (2,),
        placeholders: tuple[str, ...] = ("DocumentNumber", "Comment"),
        docx: bytes | None = None,
    ) -> int:
        """Store a template as ``template.add`` would and return its id.

        Args:
            name: the template name.
            numerator_id: its numerator; a new ``{NUMBER}`` numerator when ``None``.
            entity_type_ids: the entity types it is bound to.
            placeholders: the fields of the generated ``.docx`` (ignored when ``docx`` given).
            docx: the template file; :func:`build_docx` of ``placeholders`` when ``None``.
        """
        if numerator_id is None:
            numerator_id = store_numerator(
                self.state, f"{name} numerator", "{NUMBER}", by_rest=True
            )
        record = store_template(
            self.state,
            name=name,
            file=docx if docx is not None else build_docx(placeholders),
            numerator_id=numerator_id,
            entity_type_ids=[str(code) for code in entity_type_ids],
        )
        return record.id

    def seed_document(
        self,
        template_id: int,
        entity_type_id: int = 2,
        entity_id: int = 1,
        values: Mapping[str, Any] | None = None,
    ) -> int:
        """Generate a document as ``document.add`` would (conversion included); its id.

        Raises:
            PortalError: the same errors ``document.add`` answers with.
        """
        template = self.state.templates.get(template_id)
        if template is None:
            raise PortalError("0", "Template not found")
        record = create_document(
            self.state,
            self.conversion,
            template,
            entity_type_id,
            entity_id,
            dict(values or {}),
            stamps_enabled=False,
            user_id=WEBHOOK_USER,
        )
        return record.id

    @property
    def templates(self) -> Mapping[int, dict[str, Any]]:
        """Stored templates by id (deleted ones too), as ``template.get`` shows them."""
        return _View(self.state.templates, lambda r: template_wire(self._view_context(), r))

    @property
    def documents(self) -> Mapping[int, dict[str, Any]]:
        """Stored documents by id, as ``document.get`` shows them to the webhook."""
        return _View(self.state.documents, lambda r: document_wire(self._view_context(), r, "get"))

    @property
    def models(self) -> PortalModels:
        """``documents``, ``templates`` and ``numerators`` as the client's models."""
        return PortalModels(cast("FakePortal", self))

    def document_file(self, document_id: int, kind: str = "docx") -> bytes:
        """The bytes a document's ``docx``, ``pdf`` or ``image`` URL serves.

        Raises:
            KeyError: no such document.
            LookupError: the PDF or image is not there (conversion pending or failed).
        """
        if kind not in _FILE_KINDS:
            raise ValueError(f"kind must be one of {_FILE_KINDS}, got {kind!r}")
        record = self.state.documents[document_id]
        if kind == "docx":
            return record.docx
        shown = self.conversion.view(record)
        data = shown.pdf if kind == "pdf" else shown.image
        if data is None or shown.status != "ready":
            raise LookupError(f"document {document_id} has no {kind} (conversion not done)")
        return data

    def template_file(self, template_id: int) -> bytes:
        """The ``.docx`` of a template (what its ``downloadMachine`` URL serves)."""
        return self.state.templates[template_id].file

    def bindings_for(self, event: str) -> list[EventBinding]:
        """Every ``event.bind`` registration of ``event`` (any case), all applications."""
        return [b for b in self.state.bindings if b.event == event.upper()]

    @property
    def pending_events(self) -> list[PendingEvent]:
        """Events waiting for delivery, oldest first; a deliverer pops from this very list."""
        return self.state.pending_events

    def _view_context(self) -> CallContext:
        auth = AuthInfo("webhook", f"webhook:{WEBHOOK_USER}", WEBHOOK_USER, None, self.webhook_code)
        return CallContext(cast("FakePortal", self), self.state, auth, "view")


class _View(Mapping[int, dict[str, Any]]):
    """A read-only mapping that renders each stored record when it is looked up."""

    def __init__(self, records: Mapping[int, _T], render: Callable[[_T], dict[str, Any]]) -> None:
        self._records = records
        self._render = render

    def __getitem__(self, key: int) -> dict[str, Any]:
        return self._render(self._records[key])

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._records))

    def __len__(self) -> int:
        return len(self._records)
