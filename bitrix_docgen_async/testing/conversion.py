"""The asynchronous DOCX -> PDF + preview-image conversion of the fake document generator.

docs/portal.md#pdf-conversion: right after ``document.add``/``update``/``upload`` the PDF and the
image are not there yet. Here a conversion finishes ``delay`` seconds (on the portal's injected
clock, give or take a seeded ``jitter``) after it starts; until then ``pdfUrl``/``imageUrl`` and
their ``*Machine`` forms are **absent** from the document (the docs: "may be absent immediately
after creation"), never ``""``. A seeded share ``failure_rate`` of conversions fail: from the moment
they would have finished, the document shows ``isTransformationError: true`` with a code and a
message, and it never gets a PDF or an image. A ``document.upload`` is converted the same way,
even when it brings its own ``pdfContent`` (the docs' upload example answers without a
``pdfUrl``).

After ``document.update`` the re-render is converted again, and until that conversion is done
the document keeps showing the previous render (docs/portal.md#where-the-sources-disagree:
``pdfUrl`` may still point at
it): ``pdfUrl``/``imageUrl`` and their ``*Machine`` forms stay, serve the previous bytes, and
``document.list`` rows keep the previous ``pdfId``/``imageId``. Once the new conversion ends,
the new files (with new ids) or the failure take their place. :meth:`Conversion.view` is what
every handler shows.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Literal

import attrs

from bitrix_docgen_async.testing.files import build_pdf, build_png
from bitrix_docgen_async.testing.records import DocumentRecord, Rendered

__all__ = ["ERROR_CODE", "ERROR_MESSAGE", "Conversion", "Status", "View"]

#: ``transformationErrorCode`` of a failed conversion (the docs give no example value).
ERROR_CODE = "TRANSFORMATION_FAILED"
#: ``transformationErrorMessage`` of a failed conversion.
ERROR_MESSAGE = "The document could not be converted to PDF"

Status = Literal["pending", "ready", "failed"]


@attrs.frozen
class View:
    """What the portal shows of a document's conversion right now.

    Attributes:
        status: ``"pending"``, ``"ready"`` or ``"failed"``.
        pdf: the PDF served (``None`` unless ready).
        image: the preview image served (``None`` unless ready).
        pdf_id: ``pdfId`` (``None`` unless ready).
        image_id: ``imageId`` (``None`` unless ready).
        stale: the files are the previous render's; the update's conversion is still running.
    """

    status: Status
    pdf: bytes | None = attrs.field(default=None, repr=False)
    image: bytes | None = attrs.field(default=None, repr=False)
    pdf_id: int | None = None
    image_id: int | None = None
    stale: bool = False


def _check(name: str, value: float, upper: float | None = None) -> float:
    if value < 0 or (upper is not None and value > upper):
        limit = f"within [0, {upper}]" if upper is not None else ">= 0"
        raise ValueError(f"{name} must be {limit}, got {value!r}")
    return value


class Conversion:
    """Schedules the conversions of one portal.

    Args:
        delay: seconds from the start of a conversion to its end.
        jitter: each delay varies uniformly by up to this many seconds either way.
        failure_rate: the probability that a conversion fails.
        seed: seed of the jitter and failure draws.
        clock: the portal's clock.
    """

    def __init__(
        self,
        *,
        delay: float,
        jitter: float,
        failure_rate: float,
        seed: int,
        clock: Callable[[], float],
    ) -> None:
        self.delay = _check("pdf_delay", delay)
        self.jitter = _check("pdf_jitter", jitter)
        self.failure_rate = _check("pdf_failure_rate", failure_rate, 1.0)
        self.clock = clock
        self._rng = random.Random(f"conversion:{seed}")

    def start(self, record: DocumentRecord) -> None:
        """(Re)start converting ``record``'s DOCX; the previous PDF and image are dropped."""
        delay = self.delay
        if self.jitter:
            delay += self._rng.uniform(-self.jitter, self.jitter)
        record.ready_at = self.clock() + max(0.0, delay)
        record.failed = self.failure_rate > 0 and self._rng.random() < self.failure_rate
        if record.failed:
            record.pdf = record.image = None
            return
        # The render's own file id is printed too, so every render's PDF differs.
        lines = [
            f"Document {record.id}",
            f"Number {record.number}",
            record.title,
            f"Render {record.file_ids[2]}",
        ]
        record.pdf = build_pdf(lines)
        record.image = build_png(_colour(record.id))

    def restart(self, record: DocumentRecord, image_id: int, pdf_id: int) -> None:
        """Convert an updated ``record`` again; what it shows now stays until that is done."""
        shown = self.view(record)
        record.previous = (
            Rendered(shown.pdf, shown.image, shown.pdf_id, shown.image_id)
            if shown.status == "ready"
            and shown.pdf is not None
            and shown.image is not None
            and shown.pdf_id is not None
            and shown.image_id is not None
            else None
        )
        file_id, _, _, email_file = record.file_ids
        record.file_ids = (file_id, image_id, pdf_id, email_file)
        self.start(record)

    def status(self, record: DocumentRecord) -> Status:
        """The latest conversion's: ``"pending"`` until ``ready_at``, then ready or failed."""
        if self.clock() < record.ready_at:
            return "pending"
        return "failed" if record.failed else "ready"

    def view(self, record: DocumentRecord) -> View:
        """What the portal shows: the latest conversion's result, or while it runs after an
        update, the previous render's files."""
        status = self.status(record)
        if status == "pending":
            old = record.previous
            if old is None:
                return View("pending")
            return View("ready", old.pdf, old.image, old.pdf_id, old.image_id, stale=True)
        record.previous = None
        if status == "failed":
            return View("failed")
        _, image_id, pdf_id, _ = record.file_ids
        return View("ready", record.pdf, record.image, pdf_id, image_id)


def _colour(seed: int) -> tuple[int, int, int]:
    return (seed * 67 % 256, seed * 131 % 256, seed * 199 % 256)
