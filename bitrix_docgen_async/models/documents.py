"""Documents (``crm.documentgenerator.document.*``) and the field descriptions of ``getfields``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from bitrix_docgen_async.core.pdf import PdfSince, PdfState, pdf_state
from bitrix_docgen_async.models.common import redacted

__all__ = ["Document", "FieldDescription", "ProductsSummary"]


@attrs.frozen
class ProductsSummary:
    """The summary of a document's products table.

    Attributes:
        currency_id: the currency code, e.g. ``"EUR"``.
        total_sum: the total of all rows.
        total_rows: the number of rows.
    """

    currency_id: str | None = None
    total_sum: Decimal | None = None
    total_rows: int | None = None


@attrs.frozen
class Document:
    """A generated (or uploaded) document.

    The identity and binding fields are always present; everything else is optional, because
    the portal leaves fields out depending on the method (``list`` rows have no ``pullTag``, a
    fresh ``add`` may have no PDF yet).

    The ``*_machine`` URLs carry an access token: they work without a browser session, are
    meant for downloads, and never show in ``repr()``. Do not log them.

    Attributes:
        id: the document id.
        title: the document title.
        number: the document number issued by the template's numerator.
        template_id: the template the document was made from.
        entity_type_id: the CRM entity type (see :class:`~.common.EntityType`).
        entity_id: the CRM item the document belongs to.
        created_time: when the document was created.
        updated_time: when the document was last changed.
        created_by: the user who created it.
        updated_by: the user who last changed it.
        download_url: the DOCX link for a logged-in browser user.
        download_url_machine: the DOCX link for machine access (secret).
        pdf_url: the PDF link for a browser user; empty until conversion has finished.
        pdf_url_machine: the PDF link for machine access (secret).
        image_url: the preview image link for a browser user.
        image_url_machine: the preview image link for machine access (secret).
        public_url: the public link, if one was enabled.
        values: the field values the document was made with (includes service keys).
        stamps_enabled: whether stamps and signatures are printed.
        is_transformation_error: whether the PDF/image conversion failed.
        transformation_error_code: the conversion error code, if it failed.
        transformation_error_message: the conversion error message, if it failed.
        products: the summary of the products table.
        file_id: the Drive file of the DOCX (``list`` rows).
        image_id: the Drive file of the preview image (``list`` rows).
        pdf_id: the Drive file of the PDF (``list`` rows).
        email_disk_file: the Drive file used to send the document by e-mail.
        pull_tag: the Push & Pull tag for conversion status (browser clients only).
        change_stamps_enabled: whether the stamps setting may be changed.
        change_stamps_disabled_reason: why it may not be changed.
        qr_code_enabled: whether a QR code is printed.
        change_qr_code_enabled: whether the QR code setting may be changed.
        change_qr_code_disabled_reason: why it may not be changed.
        pdf_since: not a portal field: set on the document that
            :meth:`~bitrix_docgen_async.resources.documents.Documents.update` returns, it names
            the render from before the update, which must not count as this document's PDF
            (see :meth:`pdf_state`).
    """

    id: int
    title: str
    number: str
    template_id: int
    entity_type_id: int
    entity_id: int
    created_time: datetime | None = None
    updated_time: datetime | None = None
    created_by: int | None = None
    updated_by: int | None = None
    download_url: str | None = None
    download_url_machine: str | None = attrs.field(default=None, repr=redacted)
    pdf_url: str | None = None
    pdf_url_machine: str | None = attrs.field(default=None, repr=redacted)
    image_url: str | None = None
    image_url_machine: str | None = attrs.field(default=None, repr=redacted)
    public_url: str | None = None
    values: Mapping[str, Any] = attrs.field(factory=dict)
    stamps_enabled: bool | None = None
    is_transformation_error: bool = False
    transformation_error_code: str | None = None
    transformation_error_message: str | None = None
    products: ProductsSummary | None = None
    file_id: int | None = None
    image_id: int | None = None
    pdf_id: int | None = None
    email_disk_file: int | None = None
    pull_tag: str | None = None
    change_stamps_enabled: bool | None = None
    change_stamps_disabled_reason: str | None = None
    qr_code_enabled: bool | None = None
    change_qr_code_enabled: bool | None = None
    change_qr_code_disabled_reason: str | None = None
    pdf_since: PdfSince | None = None

    def pdf_state(self, since: PdfSince | None = None) -> PdfState:
        """Where this document's PDF stands: READY, FAILED or PENDING.

        The library's one readiness rule (:func:`~bitrix_docgen_async.core.pdf.pdf_state`):
        FAILED when the portal reports ``isTransformationError``; READY when a PDF link is set
        and, after an update, the PDF is not the previous render's (its ``pdfId`` changed);
        PENDING otherwise.

        Args:
            since: the render to skip; defaults to :attr:`pdf_since`.
        """
        return pdf_state(
            self.pdf_url_machine,
            self.pdf_url,
            self.is_transformation_error,
            pdf_id=self.pdf_id,
            since=since if since is not None else self.pdf_since,
        )

    @property
    def pdf_ready(self) -> bool:
        """Whether the PDF is there to download: ``pdf_state()`` is READY.

        A document right after ``document.update`` is not ready while its link still points at
        the previous render.
        """
        return self.pdf_state() is PdfState.READY

    @property
    def pdf_failed(self) -> bool:
        """Whether the portal reported that converting the document failed (FAILED)."""
        return self.pdf_state() is PdfState.FAILED


@attrs.frozen
class FieldDescription:
    """One field of a template or document, as ``getfields`` describes it.

    Attributes:
        code: the field code (the key in ``documentFields``/``templateFields``), the name to
            use in ``values``.
        title: the human-readable name.
        value: the current value (a string, ``None``, or a list of options for a selector).
        default: the default value.
        required: whether the field must have a value.
        type: the field type, e.g. ``"IMAGE"``, when the portal names one.
        group: the groups the field belongs to, outermost first.
        chain: where the value comes from, e.g. ``"this.DOCUMENT.DOCUMENT_NUMBER"`` (the
            portal may also send a non-string chain, kept as is).
        format: the display format, as sent.
        options: extra options, as sent.
        hide_row: whether the table row is hidden when the value is empty.
    """

    code: str
    title: str | None = None
    value: Any = None
    default: Any = None
    required: bool = False
    type: str | None = None
    group: tuple[str, ...] = ()
    chain: Any = None
    format: Any = None
    options: Any = None
    hide_row: bool | None = None
