"""The operating ledger at scale: bounded state, exact enough sums, untrusted figures clamped."""

from __future__ import annotations

import pickle
import random

import pytest

from bitrix_docgen_async.core.ratelimit import OperatingBudget, OperatingLedger

BUDGET = OperatingBudget(limit_s=480.0, window_s=600.0, buckets=10)
#: the ledger's resolution: bookings are held until the end of a slot of 6 s
SLOT = 6.0


def test_state_stays_bounded_however_many_bookings_it_holds() -> None:
    # 100,000 adds settled within one window, out of order (batches overlap, so a command that
    # started earlier may be settled later): the ledger must not keep one entry per booking,
    # or every operation would cost more as the run goes on.
    ledger = OperatingLedger(BUDGET)
    rng = random.Random(3)
    small = OperatingLedger(BUDGET)
    for i in range(1_000):
        small.settle(i * 0.005, reserved=0.0, actual=0.004, ended_ago=rng.uniform(0, 3))
    for i in range(100_000):
        now = i * 0.005  # 500 s: every booking is still in the window
        ledger.reserve(0.004)
        ledger.settle(now, reserved=0.004, actual=0.004, ended_ago=rng.uniform(0, 3))
    assert ledger.used(500.0) == pytest.approx(400.0)
    assert len(pickle.dumps(ledger)) < 4 * len(pickle.dumps(small)) + 4096


def test_sums_match_an_exact_model_and_err_only_late() -> None:
    ledger = OperatingLedger(BUDGET)
    rng = random.Random(7)
    bookings: list[tuple[float, float]] = []  # (exact expiry, seconds)
    now = 0.0
    for _ in range(5_000):
        now += rng.uniform(0.0, 0.5)
        actual = rng.uniform(0.01, 2.0)
        ago = rng.uniform(0.0, 5.0)
        ledger.settle(now, reserved=0.0, actual=actual, ended_ago=ago)
        bookings.append((now - ago - actual + BUDGET.window_s, actual))
        exact = sum(s for t, s in bookings if t > now)
        # held until the end of its slot at the latest: never less, at most one slot more
        late = sum(s for t, s in bookings if t + SLOT > now)
        assert exact - 1e-6 <= ledger.used(now) <= late + 1e-6


def test_everything_expires_to_exactly_zero() -> None:
    ledger = OperatingLedger(BUDGET)
    for i in range(1000):
        ledger.settle(i * 0.1, reserved=0.0, actual=0.1 + i * 1e-7)
    assert ledger.used(10_000.0) == 0.0
    assert ledger.next_change(10_000.0) is None


def test_an_absurd_operating_figure_is_clamped_to_the_limit_and_one_window() -> None:
    # One reply said operating = 10000 s with a reset 30 days ahead: without clamping the
    # method is blocked for a month and nothing says why.
    ledger = OperatingLedger(BUDGET)
    ledger.observe(0.0, operating=10_000.0, reset_in=30 * 86_400.0)
    assert ledger.used(0.0) <= BUDGET.limit_s
    change = ledger.next_change(0.0)
    assert change is not None and change <= BUDGET.window_s + SLOT
    assert ledger.headroom(BUDGET.window_s + SLOT) == BUDGET.limit_s


def test_a_suspension_is_clamped_to_one_window() -> None:
    ledger = OperatingLedger(BUDGET)
    ledger.suspend(100.0, 100.0 + 30 * 86_400.0)
    assert ledger.headroom(100.0) == 0.0
    change = ledger.next_change(100.0)
    assert change is not None and change <= 100.0 + BUDGET.window_s + SLOT
    assert ledger.headroom(100.0 + BUDGET.window_s + SLOT) == BUDGET.limit_s


def test_negative_or_nan_free_figures_do_not_book_anything() -> None:
    ledger = OperatingLedger(BUDGET)
    ledger.observe(0.0, operating=-5.0, reset_in=-1.0)
    assert ledger.used(0.0) == 0.0
