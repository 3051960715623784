"""The fake portal's limits for the demo and the emulator: realistic, or scaled for speed.

Both come from :meth:`FakePortal.realistic` (:mod:`bitrix_docgen_async.testing.realistic`):
what a cloud portal on an ordinary plan does (docs/portal.md#limits, docs/portal.md#pdf-conversion)
-- a request bucket of 50
draining at 2 per second, 480 s of execution per method per 10 minutes, ``document.add``
rendering for 1.5 ± 0.5 s and PDFs converting in 24 ± 16 s. Fast is the same divided by 100:
burst 50 at 200 per second, 4.8 s per 6 s, an add costing 0.015 s and PDFs ready after
0.08 to 0.4 s. The emulator's flags may override single figures (:func:`attrs.evolve`).
"""

from __future__ import annotations

from typing import Any

import attrs

from bitrix_docgen_async.core.pdf import PollSchedule
from bitrix_docgen_async.core.ratelimit import OperatingBudget, RateLimit
from bitrix_docgen_async.testing import FakePortal
from bitrix_docgen_async.testing.billing import BillingModel
from bitrix_docgen_async.testing.realistic import RealisticLimits

__all__ = ["ADD", "FAST", "PLANS", "REALISTIC", "Limits", "plan_limits"]

ADD = "crm.documentgenerator.document.add"
#: How much faster than a real portal ``--fast`` runs.
FAST_SCALE = 100.0


@attrs.frozen
class Limits:
    """One set of portal limits and the matching client settings.

    Attributes:
        name: shown to the user.
        scale: the :meth:`FakePortal.realistic` scale the costs come from.
        rate_limit: the request bucket.
        budget: the per-method operating budget.
        add_cost: mean seconds of execution of one ``document.add`` (and update, delete).
        add_jitter: each execution varies by up to this much either way.
        pdf_delay: mean seconds until a new document's PDF exists.
        pdf_jitter: each conversion takes up to this much more or less.
        pdf_failure_rate: the share of conversions that fail.
        billing: where the portal bills a ``batch``: ``"batch"`` (as measured) or ``"method"``
            (as documented); see docs/portal.md#how-batch-is-billed.
    """

    name: str
    scale: float
    rate_limit: RateLimit
    budget: OperatingBudget
    add_cost: float
    add_jitter: float
    pdf_delay: float
    pdf_jitter: float
    pdf_failure_rate: float = 0.0
    billing: BillingModel = "batch"

    @classmethod
    def scaled(cls, name: str, scale: float) -> Limits:
        """The documented figures divided by ``scale`` (see :class:`RealisticLimits`)."""
        real = RealisticLimits(scale)
        return cls(
            name=name,
            scale=scale,
            rate_limit=real.rate_limit,
            budget=real.operating_budget,
            add_cost=real.write_cost,
            add_jitter=real.write_jitter,
            pdf_delay=real.pdf_delay,
            pdf_jitter=real.pdf_jitter,
        )

    def portal(self, **options: Any) -> FakePortal:
        """A :meth:`FakePortal.realistic` portal with these limits (``options`` on top)."""
        return FakePortal.realistic(
            self.scale,
            rate_limit=self.rate_limit,
            operating_budget=self.budget,
            pdf_delay=self.pdf_delay,
            pdf_jitter=self.pdf_jitter,
            pdf_failure_rate=self.pdf_failure_rate,
            operating_billing=self.billing,
            **options,
        )

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

    def overridden(
        self,
        *,
        rate: float | None = None,
        burst: int | None = None,
        budget: float | None = None,
        window: float | None = None,
    ) -> Limits:
        """These limits with single figures replaced (``None`` keeps a figure).

        Args:
            rate: requests the bucket drains per second.
            burst: the bucket's size.
            budget: seconds of execution per method per window.
            window: the operating budget's window, seconds.
        """
        bucket, spent = self.rate_limit, self.budget
        return attrs.evolve(
            self,
            rate_limit=RateLimit(burst=burst or bucket.burst, per_second=rate or bucket.per_second),
            budget=OperatingBudget(
                limit_s=budget or spent.limit_s, window_s=window or spent.window_s
            ),
        )

    def describe(self) -> str:
        """One line for the user."""
        rate, budget = self.rate_limit, self.budget
        failing = f", {self.pdf_failure_rate:.0%} failing" if self.pdf_failure_rate else ""
        return (
            f"{self.name} limits: bucket {rate.burst} at {rate.per_second:g}/s; "
            f"budget {budget.limit_s:g} s per {budget.window_s:g} s per method, "
            f"a batch billed {_BILLED[self.billing]}; "
            f"document.add {self.add_cost:g} ± {self.add_jitter:g} s; "
            f"PDF after {self.pdf_delay:g} ± {self.pdf_jitter:g} s{failing}"
        )


_BILLED = {"batch": "to `batch`", "method": "per command"}

REALISTIC = Limits.scaled("realistic", 1.0)
FAST = Limits.scaled("fast", FAST_SCALE)

#: ``--plan`` of the portal commands: the documented plans (docs/portal.md#limits) and the
#: emulator's ``--fast`` limits, so that a command can match ``bitrix-docgen emulator --fast``.
PLANS = ("standard", "enterprise", "fast")


def plan_limits(plan: str) -> Limits:
    """The limits of a ``--plan``: ``standard`` (bucket 50 at 2/s), ``enterprise`` (250 at
    5/s) -- both with the 480 s per 10 min operating budget -- or ``fast`` (as the emulator's
    ``--fast``).

    Raises:
        ValueError: an unknown plan.
    """
    if plan == "standard":
        return attrs.evolve(REALISTIC, name="standard")
    if plan == "enterprise":
        return attrs.evolve(REALISTIC, name="enterprise", rate_limit=RateLimit.enterprise())
    if plan == "fast":
        return FAST
    raise ValueError(f"unknown plan {plan!r}: expected one of {', '.join(PLANS)}")
