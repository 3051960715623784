"""The fake portal's limits for the demo and the emulator: realistic, or scaled for speed.

Realistic is what a cloud portal on an ordinary plan does (docs/portal.md#limits): a request bucket
of 50 draining at 2 per second, 480 s of execution per method per 10 minutes, ``document.add``
rendering for about 1.5 s and PDFs converting in 8 s. Fast keeps the shape and scales time down:
burst 50 at 20 per second, the budget 1:100 (4.8 s per 6 s), an add costing 0.02 s and PDFs
ready after 0.5 s.
"""

from __future__ import annotations

from typing import Any

import attrs

from bitrix_docgen_async.core.pdf import PollSchedule
from bitrix_docgen_async.core.ratelimit import OperatingBudget, RateLimit

__all__ = ["ADD", "FAST", "REALISTIC", "Limits"]

ADD = "crm.documentgenerator.document.add"


@attrs.frozen
class Limits:
    """One set of portal limits and the matching client settings.

    Attributes:
        name: shown to the user.
        rate_limit: the request bucket.
        budget: the per-method operating budget.
        add_cost: mean seconds of execution of one ``document.add``.
        add_jitter: each execution varies by up to this much either way (the fake portal
            applies it to every method).
        pdf_delay: seconds until a new document's PDF exists.
        pdf_jitter: each conversion takes up to this much more or less.
    """

    name: str
    rate_limit: RateLimit
    budget: OperatingBudget
    add_cost: float
    add_jitter: float
    pdf_delay: float
    pdf_jitter: float

    def portal_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`FakePortal`."""
        return {
            "rate_limit": self.rate_limit,
            "operating_budget": self.budget,
            "method_costs": {ADD: self.add_cost},
            "cost_jitter": self.add_jitter,
            "pdf_delay": self.pdf_delay,
            "pdf_jitter": self.pdf_jitter,
        }

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments of ``DocgenClient.from_webhook`` for a portal with these limits."""
        first_look = max(0.0, self.pdf_delay - self.pdf_jitter)
        return {
            "rate_limit": self.rate_limit,
            "operating_budget": self.budget,
            "pdf_schedule": PollSchedule(
                min_conversion=first_look, interval=max(0.1, self.pdf_delay / 4)
            ),
        }

    def describe(self) -> str:
        """One line for the user."""
        rate, budget = self.rate_limit, self.budget
        return (
            f"{self.name} limits: bucket {rate.burst} at {rate.per_second:g}/s; "
            f"budget {budget.limit_s:g} s per {budget.window_s:g} s per method; "
            f"document.add {self.add_cost:g} ± {self.add_jitter:g} s; "
            f"PDF after {self.pdf_delay:g} ± {self.pdf_jitter:g} s"
        )


REALISTIC = Limits(
    name="realistic",
    rate_limit=RateLimit.standard(),
    budget=OperatingBudget(),
    add_cost=1.5,
    add_jitter=0.5,
    pdf_delay=8.0,
    pdf_jitter=0.0,
)

FAST = Limits(
    name="fast",
    rate_limit=RateLimit(burst=50, per_second=20.0),
    budget=OperatingBudget(limit_s=4.8, window_s=6.0),
    add_cost=0.02,
    add_jitter=0.005,
    pdf_delay=0.5,
    pdf_jitter=0.125,
)
