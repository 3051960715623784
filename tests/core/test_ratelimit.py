"""Limit arithmetic, tested synchronously with explicit times."""

from __future__ import annotations

import pytest

from bitrix_docgen_async.core.ratelimit import (
    BucketedBudget,
    CostEstimate,
    LeakyBucket,
    OperatingBudget,
    OperatingLedger,
    RateLimit,
    TokenBucket,
)


def test_presets_match_the_portal() -> None:
    assert RateLimit.standard() == RateLimit(burst=50, per_second=2.0)
    assert RateLimit.enterprise() == RateLimit(burst=250, per_second=5.0)
    assert OperatingBudget() == OperatingBudget(limit_s=480.0, window_s=600.0, buckets=10)


@pytest.mark.parametrize("kwargs", [{"burst": 0, "per_second": 1}, {"burst": 5, "per_second": 0}])
def test_rate_limit_rejects_non_positive(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        RateLimit(**kwargs)  # type: ignore[arg-type]


def test_token_bucket_hands_out_the_burst_then_one_slot_per_interval() -> None:
    bucket = TokenBucket(RateLimit(burst=5, per_second=2.0), now=0.0, margin=1.0)
    waits = [bucket.reserve(0.0) for _ in range(7)]
    # capacity 4 (burst less the margin), then every 0.5 s, in the order asked
    assert waits == [0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.5]


def test_token_bucket_never_gives_one_slot_twice() -> None:
    bucket = TokenBucket(RateLimit(burst=3, per_second=10.0), now=0.0, margin=0.0)
    slots = [bucket.reserve(0.0) for _ in range(50)]
    assert slots == sorted(slots)
    assert len(set(slots[3:])) == 47


def test_token_bucket_refills_to_capacity_only() -> None:
    bucket = TokenBucket(RateLimit(burst=3, per_second=1.0), now=0.0, margin=0.0)
    for _ in range(3):
        bucket.reserve(0.0)
    assert bucket.reserve(100.0) == 0.0
    assert bucket.tokens == pytest.approx(2.0)


def test_token_bucket_drain_and_refund() -> None:
    bucket = TokenBucket(RateLimit(burst=10, per_second=2.0), now=0.0, margin=0.0)
    bucket.drain(0.0)
    assert bucket.reserve(0.0) == pytest.approx(0.5)
    bucket.refund(0.0)
    assert bucket.reserve(0.0) == pytest.approx(0.5)


def test_a_client_bucket_never_overflows_the_portal_bucket() -> None:
    limit = RateLimit(burst=10, per_second=20.0)
    client = TokenBucket(limit, now=0.0, margin=1.0)
    portal = LeakyBucket(limit)
    sent = [client.reserve(0.0) for _ in range(300)]
    assert all(portal.try_add(t) for t in sent)


def test_leaky_bucket_refuses_above_the_burst_and_drains() -> None:
    portal = LeakyBucket(RateLimit(burst=2, per_second=1.0))
    assert portal.try_add(0.0) and portal.try_add(0.0)
    assert not portal.try_add(0.0)
    assert not portal.try_add(0.5)
    assert portal.try_add(1.0)


def test_bucketed_budget_refuses_once_the_sum_reaches_the_limit() -> None:
    budget = BucketedBudget(OperatingBudget(limit_s=10.0, window_s=100.0, buckets=10))
    for second in range(5):
        assert budget.allows(float(second))
        budget.add(float(second), 2.0)  # all in the first bucket (it spans 10 s)
    assert budget.operating(5.0) == pytest.approx(10.0)
    assert not budget.allows(5.0)
    assert budget.reset_at(5.0) == pytest.approx(100.0)
    assert budget.allows(100.0)  # the bucket opened at 0 dropped out


def test_bucketed_budget_opens_new_buckets_per_span() -> None:
    budget = BucketedBudget(OperatingBudget(limit_s=10.0, window_s=100.0, buckets=10))
    budget.add(0.0, 1.0)
    budget.add(15.0, 1.0)
    assert len(budget.opened) == 2
    assert budget.operating(105.0) == pytest.approx(1.0)


def test_ledger_pacing_reserves_and_settles() -> None:
    ledger = OperatingLedger(OperatingBudget(limit_s=10.0, window_s=5.0), utilisation=1.0)
    assert ledger.headroom(0.0) == 10.0
    ledger.reserve(4.0)
    assert ledger.headroom(0.0) == 6.0
    ledger.settle(4.0, reserved=4.0, actual=3.0)  # ran from (no later than) 1.0 to 4.0
    assert ledger.used(4.0) == pytest.approx(3.0)
    assert ledger.next_change(4.0) == pytest.approx(6.0)
    assert ledger.headroom(6.0) == 10.0


def test_ledger_books_what_the_portal_reports_beyond_our_own() -> None:
    ledger = OperatingLedger(OperatingBudget(limit_s=10.0, window_s=5.0), utilisation=1.0)
    ledger.settle(0.0, reserved=0.0, actual=1.0)
    ledger.observe(0.0, operating=7.0, reset_in=2.0)
    assert ledger.used(0.0) == pytest.approx(7.0)
    assert ledger.used(2.5) == pytest.approx(1.0)


def test_ledger_sees_another_spender_while_our_calls_are_in_flight() -> None:
    # The portal adds a call's time when it ends (docs/portal.md#operating-time-per-method):
    # a reply's figure beyond our bookings is someone else's even while others of ours run.
    ledger = OperatingLedger(OperatingBudget(limit_s=10.0, window_s=5.0))
    ledger.reserve(2.0)
    ledger.reserve(2.0)
    ledger.settle(1.0, reserved=2.0, actual=1.5)
    ledger.observe(1.0, operating=1.5, reset_in=4.0)  # only ours: nothing foreign
    assert ledger.used(1.0) == pytest.approx(3.5)  # 1.5 booked + 2.0 held
    ledger.observe(1.0, operating=3.0, reset_in=4.0)  # someone else's 1.5, seen at once
    assert ledger.used(1.0) == pytest.approx(5.0)
    assert ledger.used(4.8) == pytest.approx(3.5)  # ours expired; the foreign 1.5 + 2.0 held


def test_ledger_suspension() -> None:
    ledger = OperatingLedger(OperatingBudget(limit_s=10.0, window_s=5.0))
    ledger.suspend(1.0, 3.0)
    assert ledger.headroom(1.0) == 0.0
    assert ledger.next_change(1.0) == 3.0
    assert ledger.used(2.0) == pytest.approx(10.0)  # the portal's full sum is booked meanwhile
    assert ledger.headroom(3.0) > 0


def test_cost_estimate_starts_wide_and_narrows() -> None:
    cost = CostEstimate(0.2)
    assert cost.pessimistic == pytest.approx(0.4)
    for _ in range(50):
        cost.observe(0.2)
    assert cost.pessimistic == pytest.approx(0.2, abs=0.01)
    cost.observe(0.3)
    assert cost.mean > 0.2 and cost.pessimistic > cost.mean
