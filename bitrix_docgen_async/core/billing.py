"""Which billing model the portal uses, learned from its own ``time`` figures. Pure.

A live portal was measured to bill a whole ``batch`` request to the method ``batch`` and each
direct call to its own method (docs/portal.md#how-batch-is-billed); the documentation reads as
if each command inside a ``batch`` were billed to its own method. The two leave different
traces in a ``batch`` reply:

* ``"batch"`` billing: the outer ``time`` carries ``operating`` (the ``batch`` budget's sum)
  and the commands' ``result_time[k].operating`` are the request's frozen running sum;
* ``"method"`` billing: the outer ``time`` has no ``operating`` and each command's
  ``operating`` is its own method's sum.

Until a ``batch`` reply has been seen, and whenever replies disagree, the client assumes the
conservative ``"batch"`` model (everything batched is booked to one budget) and does not route
commands across budgets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeAlias

import attrs

__all__ = ["BATCH_KEY", "BillingDetector", "BillingModel"]

#: The budget key a whole ``batch`` request is billed to under ``"batch"`` billing.
BATCH_KEY = "batch"
#: ``"batch"``: a batch is billed to ``batch``; ``"method"``: each command to its method.
BillingModel: TypeAlias = Literal["batch", "method"]


@attrs.define
class BillingDetector:
    """Counts the ``batch`` replies that showed each model.

    Attributes:
        batch_seen: replies whose outer ``time`` carried ``operating``.
        method_seen: replies whose outer ``time`` had no ``operating`` while commands did.
    """

    batch_seen: int = 0
    method_seen: int = 0

    def observe(self, outer: float | None, inner: Iterable[float | None]) -> None:
        """Fold in one ``batch`` reply: the outer ``time.operating`` and each command's.

        A reply with no ``operating`` anywhere (a portal that does not report it) says nothing.
        """
        if outer is not None:
            self.batch_seen += 1
        elif any(figure is not None for figure in inner):
            self.method_seen += 1

    @property
    def detected(self) -> BillingModel | None:
        """The model the replies showed, or None before any reply or when they disagreed."""
        if self.batch_seen and not self.method_seen:
            return "batch"
        if self.method_seen and not self.batch_seen:
            return "method"
        return None

    @property
    def model(self) -> BillingModel:
        """The model to book by: ``"method"`` only once shown; otherwise ``"batch"`` (safe).

        Booking every batched command to ``batch`` is conservative under either model: the
        ``batch`` ledger then bounds every method's spend inside batches as well.
        """
        return "method" if self.detected == "method" else "batch"

    def budgets_in_batch(self, method: str) -> tuple[str, ...]:
        """The budget keys a command of ``method`` sent inside a ``batch`` is booked to.

        ``batch`` under ``"batch"`` billing, its method under ``"method"`` billing, and both
        until the figures have shown which: then neither budget can be overrun whichever
        model is in force. A direct call is billed to its method under both.
        """
        detected = self.detected
        if detected == "batch":
            return (BATCH_KEY,)
        if detected == "method":
            return (method,)
        return (BATCH_KEY, method)

    @property
    def separate_budgets(self) -> bool:
        """Whether the portal's figures showed ``batch`` billed apart from direct calls."""
        return self.detected == "batch"
