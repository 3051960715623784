"""The documented limits and costs of a cloud portal, scaled: ``FakePortal.realistic(scale=...)``.

What a cloud portal on an ordinary plan does, each figure from the docs (docs/portal.md):

* the request bucket: burst 50, drained at 2 requests per second (§3.1);
* the operating budget: 480 s of execution per budget key per 10 minutes (§3.2, the docs'
  worked example), calls under 0.1 s not billed (the JS SDK's measurement, §3.2);
* execution costs: ``document.add``/``update``/``delete`` (and ``upload``) spend about 1 to 2 s
  of ``operating`` in the docs' examples, so each costs 1.5 s give or take 0.5 s; every other
  method is free (the portal adds nothing under about 0.1 s, §3.2);
* PDF conversion: at least 8 s, and the docs advise asking again after 20 to 40 s (§8.5), so a
  conversion takes 24 s give or take 16 s.

``scale`` divides every time (costs, delays, the budget, its window and floor) and multiplies the
drain rate, so that a run keeps its shape and takes ``1/scale`` of the time. Two times are not
scaled, because clients size their own timeouts and batches by them: the 60 s cut-off of one
HTTP request and the access-token lifetime (1 hour).
"""

from __future__ import annotations

from typing import Any

import attrs

from bitrix_docgen_async.core.ratelimit import OperatingBudget, RateLimit

__all__ = ["WRITE_METHODS", "RealisticLimits"]

#: The methods that render a document and spend seconds of ``operating`` each.
WRITE_METHODS = (
    "crm.documentgenerator.document.add",
    "crm.documentgenerator.document.update",
    "crm.documentgenerator.document.delete",
    "crm.documentgenerator.document.upload",
)


def _scale(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class RealisticLimits:
    """The documented figures divided by ``scale`` (see the module docstring).

    Attributes:
        scale: how many times faster than a real portal (1: real time).
    """

    scale: float = attrs.field(default=1.0, validator=_scale)

    BURST = 50
    PER_SECOND = 2.0
    BUDGET_S = 480.0
    WINDOW_S = 600.0
    FLOOR_S = 0.1
    WRITE_COST_S = 1.5
    WRITE_JITTER_S = 0.5
    PDF_DELAY_S = 24.0
    PDF_JITTER_S = 16.0

    @property
    def rate_limit(self) -> RateLimit:
        """Burst 50, drained at ``2 * scale`` per second."""
        return RateLimit(burst=self.BURST, per_second=self.PER_SECOND * self.scale)

    @property
    def operating_budget(self) -> OperatingBudget:
        """``480 / scale`` seconds per ``600 / scale`` seconds per method."""
        return OperatingBudget(
            limit_s=self.BUDGET_S / self.scale, window_s=self.WINDOW_S / self.scale
        )

    @property
    def operating_floor(self) -> float:
        """Calls executing for less than ``0.1 / scale`` seconds are not billed."""
        return self.FLOOR_S / self.scale

    @property
    def write_cost(self) -> float:
        """Seconds one document write (add, update, delete, upload) executes, on average."""
        return self.WRITE_COST_S / self.scale

    @property
    def write_jitter(self) -> float:
        """How far one write's cost varies either way."""
        return self.WRITE_JITTER_S / self.scale

    @property
    def pdf_delay(self) -> float:
        """Mean seconds from a write to its PDF."""
        return self.PDF_DELAY_S / self.scale

    @property
    def pdf_jitter(self) -> float:
        """How far one conversion's time varies either way."""
        return self.PDF_JITTER_S / self.scale

    def portal_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~bitrix_docgen_async.testing.FakePortal`."""
        return {
            "rate_limit": self.rate_limit,
            "operating_budget": self.operating_budget,
            "operating_floor": self.operating_floor,
            "method_costs": dict.fromkeys(WRITE_METHODS, self.write_cost),
            "cost_jitter": self.write_jitter,
            "pdf_delay": self.pdf_delay,
            "pdf_jitter": self.pdf_jitter,
        }
