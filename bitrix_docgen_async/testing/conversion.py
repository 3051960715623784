"""The asynchronous DOCX -> PDF + preview-image conversion of the fake document generator.

docs/portal.md#pdf-conversion: right after ``document.add``/``update``/``upload`` the PDF and the
image are not there yet. Here a conversion finishes ``delay`` seconds (on the portal's injected
clock, give or take a seeded ``jitter``) after it starts; until then ``pdfUrl``/``imageUrl`` and
their ``*Machine`` forms are **absent** from the document (the docs: "may be absent immediately
after creation"), never ``""``. A seeded share ``failure_rate`` of conversions fail: from the moment
they would have finished, the document shows ``isTransformationError: true`` with a code and a
message, and it never gets a PDF or an image. A ``document.upload`` that brings its own
``pdfContent`` is converted at once and cannot fail.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Literal

from bitrix_docgen_async.testing.files import build_pdf, build_png
from bitrix_docgen_async.testing.records import DocumentRecord

__all__ = ["ERROR_CODE", "ERROR_MESSAGE", "Conversion", "Status"]

#: ``transformationErrorCode`` of a failed conversion (the docs give no example value).
ERROR_CODE = "TRANSFORMATION_FAILED"
#: ``transformationErrorMessage`` of a failed conversion.
ERROR_MESSAGE = "The document could not be converted to PDF"

Status = Literal["pending", "ready", "failed"]


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
        lines = [f"Document {record.id}", f"Number {record.number}", record.title]
        record.pdf = build_pdf(lines)
        record.image = build_png(_colour(record.id))

    def finish_now(self, record: DocumentRecord, pdf: bytes, image: bytes | None) -> None:
        """Use an uploaded PDF (and image, else a generated one): ready at once."""
        record.ready_at = self.clock()
        record.failed = False
        record.pdf = pdf
        record.image = image if image is not None else build_png(_colour(record.id))

    def status(self, record: DocumentRecord) -> Status:
        """``"pending"`` until ``ready_at``, then ``"ready"`` or ``"failed"``."""
        if self.clock() < record.ready_at:
            return "pending"
        return "failed" if record.failed else "ready"


def _colour(seed: int) -> tuple[int, int, int]:
    return (seed * 67 % 256, seed * 131 % 256, seed * 199 % 256)
