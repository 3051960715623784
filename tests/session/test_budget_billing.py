"""Booking by billing key (issue 13, docs/portal.md#how-batch-is-billed) against the fake portal.

The fake portal bills a batch either whole to ``batch`` (the measured model, its default) or
command by command to each method (the documented one). Budgets are scaled down to a tenth of a
second per half-second window so that no test waits out a real-sized limit; every wait is
bounded.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bitrix_docgen_async import DocgenClient, OperatingBudget, RateLimit
from bitrix_docgen_async.limiter import MemoryBackend
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY

ADD = "crm.documentgenerator.numerator.add"
GET = "crm.documentgenerator.numerator.get"
FAST = RateLimit(burst=50, per_second=50.0)
BUDGET = OperatingBudget(limit_s=0.1, window_s=0.5, buckets=5)
MODELS = ("batch", "method")


@pytest.mark.parametrize("model", MODELS)
async def test_a_bulk_of_adds_stays_inside_the_budget_it_is_billed_to(model: str) -> None:
    async with FakePortal(
        rate_limit=FAST,
        operating_budget=BUDGET,
        operating_billing=model,  # type: ignore[arg-type]
        operating_floor=0.0,
        method_costs={ADD: 0.01},
    ) as portal:
        async with DocgenClient.from_webhook(
            portal.webhook_url,
            rate_limit=FAST,
            operating_budget=BUDGET,
            retry=FAST_RETRY,
            linger=0.002,
        ) as client:
            started = time.monotonic()
            results = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        client.call(ADD, {"fields": {"name": f"n{i}", "template": "{NUMBER}"}})
                        for i in range(40)
                    )
                ),
                20.0,
            )
            elapsed = time.monotonic() - started
        assert len(results) == 40 and len(portal.numerators) == 40
        assert portal.stats.rejected_operating == 0
        assert client.stats.rate_limited == 0
        spent = {key: portal.stats.billed(key) for key in ("batch", ADD)}
        assert sum(spent.values()) == pytest.approx(0.4)
        if model == "method":
            assert spent["batch"] == 0
        for billed in spent.values():
            # Never more than the limit in any window: one limit per window elapsed, plus one.
            assert billed <= BUDGET.limit_s * (elapsed / BUDGET.window_s + 1) + 1e-6
        assert client.stats.billing_model == model
        if model == "batch":
            assert portal.stats.billed(ADD) == pytest.approx(0.01 * client.stats.direct_commands)
        assert client.stats.direct_commands + client.stats.batched_commands == 40
        assert client.stats.batched_commands > 0


@pytest.mark.parametrize("model", MODELS)
async def test_a_short_warm_up_shows_the_billing_model(model: str) -> None:
    async with FakePortal(
        rate_limit=FAST,
        operating_budget=OperatingBudget(),
        operating_billing=model,  # type: ignore[arg-type]
        method_costs={GET: 0.001},
    ) as portal:
        nid = portal.seed_numerator("x")
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY, linger=0
        ) as client:
            await asyncio.wait_for(client.call(GET, {"id": nid}), 2.0)
            assert client.stats.billing_model is None  # a direct call shows nothing
            await asyncio.wait_for(
                asyncio.gather(*(client.call(GET, {"id": nid}) for _ in range(3))), 2.0
            )
            stats = client.stats
        assert stats.billing_model == model
        assert stats.direct_commands >= 1 and stats.batched_commands >= 2
        if model == "batch":
            assert "batch" in stats.budget_spent_s and "batch" in stats.budget_left_s
        else:
            assert "batch" not in stats.budget_spent_s
        assert GET in stats.budget_spent_s


@pytest.mark.parametrize("model", MODELS)
async def test_the_reply_that_shows_the_model_frees_the_budget_it_did_not_bill(
    model: str,
) -> None:
    # Until a batch reply has shown the model, batched commands are held against both
    # ``batch`` and their method; that reply's commands are booked to the one it billed.
    async with FakePortal(
        rate_limit=FAST,
        operating_budget=OperatingBudget(),
        operating_billing=model,  # type: ignore[arg-type]
        operating_floor=0.0,
        method_costs={ADD: 0.01},
    ) as portal:
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY, linger=0
        ) as client:
            fields = [{"fields": {"name": f"n{i}", "template": "{NUMBER}"}} for i in range(3)]
            await asyncio.wait_for(asyncio.gather(*(client.call(ADD, f) for f in fields)), 5.0)
            limiter = client.session.limiter
            backend = limiter.backend
            assert isinstance(backend, MemoryBackend)
            now = limiter.clock()
            booked = {key: backend._ledger(key).booked(now) for key in ("batch", ADD)}  # type: ignore[union-attr]
        assert portal.stats.batch_sizes == [3] and client.stats.billing_model == model
        billed, unbilled = ("batch", ADD) if model == "batch" else (ADD, "batch")
        assert booked[billed] == pytest.approx(0.03, abs=0.02)
        assert booked[unbilled] == 0.0
