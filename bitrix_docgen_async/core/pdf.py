"""PDF readiness and the polling schedule. Pure: the poller in ``polling.py`` does the waiting.

Conversion of DOCX to PDF runs asynchronously on the portal (docs/portal.md#pdf-conversion):
``pdfUrl`` and ``pdfUrlMachine`` are missing or empty until it is done, ``isTransformationError``
says it failed, and the docs give no "in progress" flag. The old docs named 8 s as the minimum
conversion time, so nothing is polled earlier than that after a document's creation.

:func:`pdf_state` is the one readiness rule of the library: the poller, the bulk run, the
downloader and :attr:`Document.pdf_ready` all ask it.

After ``document.update`` the portal re-renders, but ``pdfUrl`` may still point at the PDF of
the previous render until the new one is done (docs/portal.md#where-the-sources-disagree), so a link
alone does not say
the PDF is current. A :class:`PdfSince` names the render to skip (the ``pdfId`` the document had
before the update); readiness then counts only a PDF whose ``pdfId`` differs from it.
``document.get`` does not show ``pdfId`` (only ``document.list`` rows do,
docs/portal.md#wire-quirks), and
its ``updateTime`` is the update's own time whether or not the new render is done, so a ``get``
view of an updated document stays PENDING: the poller adds the ``document.list`` row's
``pdfId`` to such documents.
"""

from __future__ import annotations

import enum
import random

import attrs

__all__ = ["PdfSince", "PdfState", "PollSchedule", "pdf_state"]


class PdfState(enum.Enum):
    """Where a document's PDF conversion stands."""

    READY = "ready"
    PENDING = "pending"
    FAILED = "failed"


@attrs.frozen
class PdfSince:
    """The render a readiness check must not count: the one from before a ``document.update``.

    Attributes:
        pdf_id: the ``pdfId`` (Drive file of the PDF) the document had before the update;
            ``None`` when it had no PDF then (a PDF shown now is then a new one).
    """

    pdf_id: int | None


def pdf_state(
    pdf_url_machine: str | None,
    pdf_url: str | None,
    failed: bool,
    *,
    pdf_id: int | None = None,
    since: PdfSince | None = None,
) -> PdfState:
    """Where a document's PDF stands, from the fields the portal sent.

    Args:
        pdf_url_machine: ``pdfUrlMachine`` (None or ``""`` when absent).
        pdf_url: ``pdfUrl``.
        failed: ``isTransformationError``.
        pdf_id: ``pdfId``, when the view has it (``document.list`` rows).
        since: the render to skip, after an update; ``None`` counts any PDF.

    Returns:
        FAILED on ``isTransformationError``; READY with a PDF link that is not the skipped
        render's (with ``since``, only a ``pdfId`` other than ``since.pdf_id`` proves that);
        PENDING otherwise.
    """
    if failed:
        return PdfState.FAILED
    if not (pdf_url_machine or pdf_url):
        return PdfState.PENDING
    if since is None:
        return PdfState.READY
    if pdf_id is None or pdf_id == since.pdf_id:
        return PdfState.PENDING  # the previous render's PDF, or no way to tell it from it
    return PdfState.READY


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class PollSchedule:
    """When to look at a pending document again.

    Attributes:
        min_conversion: seconds after creation before the first look (the docs: 8 s minimum).
        interval: the wait after the first look that found it pending.
        factor: each later wait is this much longer ...
        max_interval: ... up to this.
        jitter: +- this fraction of each wait, so that many pollers do not align.
        coalesce: documents due within this fraction of the current wait are polled in the
            same round, so that one round fills whole batches of 50.
    """

    min_conversion: float = attrs.field(default=8.0, validator=_non_negative)
    interval: float = attrs.field(default=2.0, validator=_non_negative)
    factor: float = attrs.field(default=1.5, validator=_non_negative)
    max_interval: float = attrs.field(default=30.0, validator=_non_negative)
    jitter: float = attrs.field(default=0.1, validator=_non_negative)
    coalesce: float = attrs.field(default=0.5, validator=_non_negative)

    def first_poll(self, created_at: float | None, now: float) -> float:
        """When to look first at a document created at ``created_at`` (None: unknown, now)."""
        if created_at is None:
            return now
        return max(now, created_at + self.min_conversion)

    def next_wait(self, looks: int, rng: random.Random) -> float:
        """The wait after the ``looks``-th look found the document still pending."""
        base = min(self.max_interval, self.interval * self.factor ** max(0, looks - 1))
        return max(0.0, base * (1 + rng.uniform(-self.jitter, self.jitter)))
