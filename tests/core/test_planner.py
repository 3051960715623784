"""Batch composition (core/planner.py), synchronously."""

from __future__ import annotations

from bitrix_docgen_async.core.planner import MAX_BATCH, Head, Take, plan

ADD = "crm.documentgenerator.document.add"
LIST = "crm.documentgenerator.numerator.list"
GET = "crm.documentgenerator.document.get"
UPLOAD = "crm.documentgenerator.document.upload"


def test_oldest_key_first_and_a_skipped_key_does_not_hold_back_the_others() -> None:
    heads = [Head(LIST, 5.0, (0.05,)), Head(ADD, 1.0, (3.0,) * MAX_BATCH)]
    assert [t.key for t in plan(heads)] == [ADD, LIST]
    # However deep the skipped queue is, the others are planned.
    assert plan(heads, skip={ADD}) == [Take(LIST, (0.05,))]


def test_at_most_fifty_commands() -> None:
    heads = [Head(GET, 1.0, (0.05,) * MAX_BATCH), Head(LIST, 2.0, (0.05,) * 10)]
    takes = plan(heads)
    assert [t.count for t in takes] == [50]
    assert [t.count for t in plan(heads, taken=45)] == [5]
    assert plan(heads, taken=50) == []


def test_the_expected_time_stays_under_the_target_but_the_first_command_always_goes() -> None:
    heads = [Head(ADD, 1.0, (3.0,) * 10), Head(GET, 2.0, (0.05,) * 3)]
    takes = plan(heads, time_target=20.0)
    assert takes == [Take(ADD, (3.0,) * 6), Take(GET, (0.05,) * 3)]
    assert plan([Head(ADD, 1.0, (30.0, 30.0))], time_target=20.0) == [Take(ADD, (30.0,))]
    assert plan([Head(GET, 1.0, (0.05,))], taken=3, expected=19.99, time_target=20.0) == []


def test_a_command_that_cannot_be_batched_goes_alone() -> None:
    heads = [Head(UPLOAD, 1.0, (3.0, 3.0), batchable=False), Head(GET, 2.0, (0.05,))]
    assert plan(heads) == [Take(UPLOAD, (3.0,))]
    # Not into a batch already started: the others are.
    assert plan(heads, taken=1, expected=0.05) == [Take(GET, (0.05,))]
    assert plan(heads, skip={UPLOAD}) == [Take(GET, (0.05,))]


def test_empty_heads_plan_nothing() -> None:
    assert plan([]) == []
    assert plan([Head(GET, 1.0, ())]) == []
