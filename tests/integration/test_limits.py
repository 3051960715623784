"""Pacing against the fake portal's request bucket and operating budget."""

from __future__ import annotations

import asyncio
import time

from bitrix_docgen_async import DocgenClient, OperatingBudget, RateLimit
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY

GET = "crm.documentgenerator.numerator.get"
ADD = "crm.documentgenerator.numerator.add"


async def test_3000_calls_stay_under_the_bucket_near_its_lower_bound() -> None:
    limit = RateLimit(burst=10, per_second=20.0)
    async with FakePortal(rate_limit=limit) as portal:
        ids = [portal.seed_numerator(f"N{i}") for i in range(10)]
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=limit) as client:
            started = time.perf_counter()
            await asyncio.gather(*(client.call(GET, {"id": ids[k % 10]}) for k in range(3000)))
            wall = time.perf_counter() - started
        requests = portal.stats.requests
        bound = (requests - limit.burst) / limit.per_second
        print(
            f"\n3000 calls: {requests} requests, {wall:.2f} s vs bound {bound:.2f} s "
            f"({wall / bound:.3f}x), 503s: {portal.stats.rejected_rate_limit}"
        )
        assert requests == 60
        assert portal.stats.rejected_rate_limit == 0
        # The wall-time ratio is a benchmark's figure (benchmarks/pacing.py), not a test's: a
        # loaded machine stretches it. The request count above is the tested property.


async def test_two_clients_sharing_a_portal_retry_503s_invisibly() -> None:
    limit = RateLimit(burst=5, per_second=20.0)
    async with FakePortal(rate_limit=limit) as portal:
        ids = [portal.seed_numerator(f"N{i}") for i in range(10)]
        async with (
            DocgenClient.from_webhook(portal.webhook_url, rate_limit=limit) as first,
            DocgenClient.from_webhook(portal.webhook_url, rate_limit=limit) as second,
        ):
            results = await asyncio.gather(
                *(c.call(GET, {"id": ids[k % 10]}) for k in range(500) for c in (first, second))
            )
        assert len(results) == 1000
        assert portal.stats.rejected_rate_limit > 0
        assert first.stats.rate_limited + second.stats.rate_limited > 0
        assert first.stats.retries + second.stats.retries > 0


async def test_operating_budget_is_paced_not_crossed() -> None:
    # cost 0.5 s per call, 10 s per 5 s window -- scaled 1:20.
    budget = OperatingBudget(limit_s=0.5, window_s=0.25)
    async with FakePortal(operating_budget=budget, method_costs={ADD: 0.025}) as portal:
        async with DocgenClient.from_webhook(
            portal.webhook_url, operating_budget=budget, retry=FAST_RETRY
        ) as client:
            started = time.perf_counter()
            results = await asyncio.gather(
                *(
                    client.call(ADD, {"fields": {"name": f"n{i}", "template": "{NUMBER}"}})
                    for i in range(200)
                )
            )
            wall = time.perf_counter() - started
        bound = 200 * 0.025 / (budget.limit_s / budget.window_s)
        print(
            f"\nbudget run: {wall:.2f} s vs bound {bound:.2f} s, "
            f"429s: {portal.stats.rejected_operating}, requests: {portal.stats.requests}"
        )
        assert len(results) == 200 and len(portal.numerators) == 200
        assert portal.stats.rejected_operating <= 1
