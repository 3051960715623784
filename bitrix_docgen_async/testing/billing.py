"""Where the fake portal bills execution time: its operating budgets and the two billing models.

The portal keeps one operating budget per budget key, the pair (credential, method); the
credential (:attr:`AuthInfo.identity`) names the auth type and the webhook or application, so
that the key is the triple (auth type, credential, method) a live portal was measured to use.
Which method a ``batch`` is billed to depends on the model (docs/portal.md#how-batch-is-billed):

* ``"batch"`` (the default: the official JS SDK's measurement on a live portal): a ``batch``
  request's total execution is billed to the method ``batch``; the commands inside are not
  billed to their own methods, though a method already blocked by its own budget (spent by
  direct calls) is refused inside the batch too. A ``batch`` whose budget is spent is refused
  whole with HTTP 429. Each command's ``result_time[key].operating`` carries the running sum
  within the request, frozen at the figure of the command that first took it to the floor
  (:class:`RunningSum`); the outer ``time.operating`` is the ``batch`` budget's.
* ``"method"`` (the documentation's reading): each command is billed to its own method, inside
  a batch as outside; the outer ``batch`` call is not billed and its ``time`` has no
  ``operating``.

Under both, a call (a direct call, a command billed to its own method, or a whole ``batch``
request under ``"batch"``) that executes for less than the floor (0.1 s on a live portal) is
not added at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, TypeAlias

import attrs

from bitrix_docgen_async.core.ratelimit import BucketedBudget, OperatingBudget

if TYPE_CHECKING:
    from bitrix_docgen_async.testing.state import PortalStats

__all__ = [
    "BATCH_METHOD",
    "BILLING_MODELS",
    "OPERATING_FLOOR_S",
    "Billing",
    "BillingModel",
    "BudgetKey",
    "RunningSum",
    "billing_model",
]

#: How a ``batch`` is billed: to ``batch`` (measured) or to each command's method (documented).
BillingModel: TypeAlias = Literal["batch", "method"]
#: The models :class:`Billing` knows, the default first.
BILLING_MODELS: tuple[BillingModel, ...] = ("batch", "method")
#: The method a whole ``batch`` request is billed to under ``"batch"`` billing.
BATCH_METHOD = "batch"
#: Calls executing for less than this many seconds are not added to any budget
#: (docs/portal.md#how-batch-is-billed: "calls shorter than about 0.1 s are not added").
OPERATING_FLOOR_S = 0.1
#: ``(credential, method)``: the credential carries the auth type (``webhook:1``, ``app:<id>``).
BudgetKey: TypeAlias = tuple[str, str]


def billing_model(value: str) -> BillingModel:
    """``value`` checked to be one of :data:`BILLING_MODELS`.

    Raises:
        ValueError: it is not.
    """
    for model in BILLING_MODELS:
        if value == model:
            return model
    raise ValueError(f"operating_billing must be one of {BILLING_MODELS}, got {value!r}")


@attrs.define
class RunningSum:
    """The ``operating`` every command of one ``batch`` request reports under ``"batch"`` billing.

    The request's execution adds up command by command; the first command that takes the sum
    to the floor freezes the figure at that sum, and every later command of the request reports
    the same frozen figure. Commands before the crossing report 0: nothing has been counted yet
    (b24jssdk PR #539: all sub-results "carry the same ``operating`` -- the sum accumulated
    within the request so far, frozen at whatever the one command that crossed the portal's
    0.1 s floor put there").

    Attributes:
        floor: seconds a request must reach to be counted.
        total: the request's execution so far.
        figure: what the commands report (0 until the floor is reached).
    """

    floor: float
    total: float = 0.0
    figure: float = 0.0
    crossed: bool = False

    def add(self, seconds: float) -> float:
        """Add one command's execution; the figure that command reports."""
        self.total += seconds
        if not self.crossed and self.total > 0 and self.total >= self.floor:
            self.crossed = True
            self.figure = self.total
        return self.figure


class Billing:
    """The operating budgets of one portal and the rules of one billing model.

    Args:
        model: ``"batch"`` or ``"method"`` (see the module docstring).
        budget: the limit and window every budget key gets; ``None`` for no limit (``operating``
            is still reported).
        floor: calls executing for less than this are not billed.
        stats: where billed seconds and refusals are counted, per budget key.
    """

    def __init__(
        self,
        *,
        model: BillingModel,
        budget: OperatingBudget | None,
        floor: float,
        stats: PortalStats,
    ) -> None:
        if not floor >= 0 or math.isinf(floor):
            raise ValueError(f"operating_floor must be a number >= 0, got {floor!r}")
        self.model = billing_model(model)
        self.budget = budget or OperatingBudget(limit_s=math.inf)
        self.floor = floor
        self.stats = stats
        self._budgets: dict[BudgetKey, BucketedBudget] = {}

    @property
    def batch_billed_whole(self) -> bool:
        """Whether a ``batch`` request is billed to ``batch`` (and its commands are not)."""
        return self.model == "batch"

    def budget_of(self, identity: str, method: str) -> BucketedBudget:
        """The operating budget of ``method`` for one credential."""
        key = (identity, method)
        if key not in self._budgets:
            self._budgets[key] = BucketedBudget(self.budget)
        return self._budgets[key]

    def allows(self, identity: str, method: str, now: float) -> bool:
        """Checked before each call: False (and the refusal counted) once the sum is spent."""
        if self.budget_of(identity, method).allows(now):
            return True
        self.stats.rejected_operating += 1
        key = (identity, method)
        self.stats.operating_refused[key] = self.stats.operating_refused.get(key, 0) + 1
        return False

    def bill(self, identity: str, method: str, started: float, seconds: float) -> bool:
        """Bill a call that started at ``started`` and executed ``seconds``; False if not billed.

        The call goes into the bucket that was open when it started, even when a concurrent
        call opened a later bucket meanwhile (a ``batch`` is billed once it has finished).
        """
        if seconds <= 0 or seconds < self.floor:
            return False
        _book(self.budget_of(identity, method), started, seconds)
        key = (identity, method)
        self.stats.operating_billed[key] = self.stats.operating_billed.get(key, 0.0) + seconds
        return True

    def figures(
        self, identity: str, method: str, now: float, wall: Callable[[], float]
    ) -> tuple[float, float]:
        """``time.operating`` and ``time.operating_reset_at`` (a Unix time) of one budget key.

        With nothing in the window the reset time is still given: one window from now.
        """
        budget = self.budget_of(identity, method)
        reset = budget.reset_at(now)
        if reset is None:
            reset = now + self.budget.window_s
        return budget.operating(now), wall() + (reset - now)


def _book(budget: BucketedBudget, started: float, seconds: float) -> None:
    opened = budget.opened
    if not opened or started >= opened[-1][0]:
        budget.add(started, seconds)
        return
    span = budget.budget.window_s / budget.budget.buckets
    for index in range(len(opened) - 1, -1, -1):
        opened_at, total = opened[index]
        if opened_at <= started:
            if started < opened_at + span:
                opened[index] = (opened_at, total + seconds)
                return
            break
    # No bucket was open when the call started: open one there, keeping the buckets in order.
    items = sorted([*opened, (started, seconds)])
    opened.clear()
    opened.extend(items)
