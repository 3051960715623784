"""The billing-model detector (core/billing.py): pure, tested synchronously."""

from __future__ import annotations

from bitrix_docgen_async.core.billing import BATCH_KEY, BillingDetector

ADD = "crm.documentgenerator.document.add"


def test_until_a_batch_reply_is_seen_both_budgets_are_booked() -> None:
    detector = BillingDetector()
    assert detector.detected is None
    assert detector.model == "batch"
    assert not detector.separate_budgets
    assert detector.budgets_in_batch(ADD) == (BATCH_KEY, ADD)


def test_an_outer_operating_shows_batch_billing() -> None:
    detector = BillingDetector()
    detector.observe(0.4, [0.4, 0.4, 0.4])  # the frozen running sum on every command
    assert detector.detected == "batch"
    assert detector.separate_budgets
    assert detector.budgets_in_batch(ADD) == (BATCH_KEY,)


def test_no_outer_operating_with_inner_figures_shows_method_billing() -> None:
    detector = BillingDetector()
    detector.observe(None, [0.02, 0.01, 0.04])
    assert detector.detected == "method"
    assert detector.model == "method"
    assert not detector.separate_budgets
    assert detector.budgets_in_batch(ADD) == (ADD,)


def test_a_reply_without_figures_says_nothing() -> None:
    detector = BillingDetector()
    detector.observe(None, [None, None])
    detector.observe(None, [])
    assert detector.detected is None


def test_replies_that_disagree_fall_back_to_booking_both() -> None:
    detector = BillingDetector()
    detector.observe(0.4, [0.4])
    detector.observe(None, [0.1])
    assert detector.detected is None
    assert detector.model == "batch"
    assert not detector.separate_budgets
    assert detector.budgets_in_batch(ADD) == (BATCH_KEY, ADD)
