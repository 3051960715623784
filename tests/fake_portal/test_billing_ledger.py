"""The fake portal's billing arithmetic, without HTTP: buckets, the floor, the running figure."""

from __future__ import annotations

import pytest

from bitrix_docgen_async.core.ratelimit import OperatingBudget
from bitrix_docgen_async.testing import PortalStats
from bitrix_docgen_async.testing.billing import Billing, RunningSum

KEY = ("webhook:1", "batch")


def billing(**options: float) -> Billing:
    budget = OperatingBudget(limit_s=options.pop("limit", 10.0), window_s=60.0, buckets=10)
    return Billing(
        model="batch", budget=budget, floor=options.pop("floor", 0.1), stats=PortalStats()
    )


def test_a_batch_finishing_late_goes_into_the_bucket_open_when_it_started() -> None:
    ledger = billing()
    ledger.bill(*KEY, started=0.0, seconds=1.0)  # opens the bucket [0, 6)
    ledger.bill(*KEY, started=7.0, seconds=1.0)  # a concurrent request opens [7, 13)
    # a request that started at 5 finishes now: billed to [0, 6), which drops out at 60
    ledger.bill(*KEY, started=5.0, seconds=2.0)
    budget = ledger.budget_of(*KEY)
    assert list(budget.opened) == [(0.0, 3.0), (7.0, 1.0)]
    assert budget.operating(59.9) == 4.0
    assert budget.operating(60.0) == 1.0
    # one that started in a gap between buckets opens its own, in order
    ledger.bill(*KEY, started=14.0, seconds=1.0)
    ledger.bill(*KEY, started=13.5, seconds=1.0)
    assert [at for at, _ in budget.opened] == [7.0, 13.5, 14.0]  # the first one dropped out
    assert ledger.stats.operating_billed == {KEY: 6.0}


def test_calls_under_the_floor_and_free_calls_open_no_bucket() -> None:
    ledger = billing(floor=0.1)
    assert not ledger.bill(*KEY, started=0.0, seconds=0.099)
    assert not ledger.bill(*KEY, started=0.0, seconds=0.0)
    assert ledger.bill(*KEY, started=1.0, seconds=0.1)
    operating, reset_at = ledger.figures(*KEY, now=2.0, wall=lambda: 1000.0)
    assert operating == pytest.approx(0.1)
    assert reset_at == pytest.approx(1000.0 + 59.0)  # the bucket opened at 1 drops out at 61
    empty = billing()
    assert empty.figures("app:x", "batch", now=5.0, wall=lambda: 1000.0) == (0.0, 1060.0)
    # with no floor a free call is still not a call that spent anything
    assert not billing(floor=0.0).bill(*KEY, started=0.0, seconds=0.0)


def test_the_budget_is_checked_before_a_call_and_refusals_are_counted_per_key() -> None:
    ledger = billing(limit=1.0)
    assert ledger.allows(*KEY, now=0.0)
    ledger.bill(*KEY, started=0.0, seconds=1.0)
    assert not ledger.allows(*KEY, now=1.0)
    assert ledger.allows("webhook:1", "crm.documentgenerator.document.add", now=1.0)
    assert ledger.stats.operating_refused == {KEY: 1}
    assert ledger.stats.rejected_operating == 1
    assert ledger.allows(*KEY, now=60.0)


@pytest.mark.parametrize(
    ("costs", "figures"),
    [
        ([0.04, 0.04, 0.04, 0.04], [0, 0, 0.12, 0.12]),
        ([0.3, 0.01, 0.2], [0.3, 0.3, 0.3]),
        ([0.02, 0.03], [0, 0]),
        ([0.0, 0.1, 0.0], [0, 0.1, 0.1]),
    ],
)
def test_the_running_figure_freezes_where_the_floor_is_reached(
    costs: list[float], figures: list[float]
) -> None:
    running = RunningSum(0.1)
    assert [running.add(cost) for cost in costs] == pytest.approx(figures)
    assert running.total == pytest.approx(sum(costs))
