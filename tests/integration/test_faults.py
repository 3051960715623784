"""Faults: reads survive them; a write hit after commit reports an unknown outcome."""

from __future__ import annotations

import asyncio

import pytest

from bitrix_docgen_async import DocgenClient, OutcomeUnknownError, RateLimit
from bitrix_docgen_async.testing import FakePortal, Faults
from tests.helpers import FAST_RETRY

GET = "crm.documentgenerator.numerator.get"
ADD = "crm.documentgenerator.numerator.add"


async def test_reads_survive_ten_percent_faults() -> None:
    faults = Faults(seed=7, error_500=0.025, html_502=0.025, invalid_json=0.025, drop_before=0.025)
    limit = RateLimit(burst=50, per_second=100.0)
    async with FakePortal(rate_limit=limit, faults=faults) as portal:
        ids = [portal.seed_numerator(f"N{i}") for i in range(10)]
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=limit, retry=FAST_RETRY, linger=0
        ) as client:
            # Sequential waves keep many small requests going, so many of them are hit.
            for _ in range(20):
                results = await asyncio.gather(
                    *(client.call(GET, {"id": ids[k % 10]}) for k in range(10))
                )
                assert [int(r["numerator"]["id"]) for r in results] == [
                    ids[k % 10] for k in range(10)
                ]
        hits = sum(portal.stats.faults.values())
        print(
            f"\nfaults injected: {dict(portal.stats.faults)}, client retries {client.stats.retries}"
        )
        assert hits > 0
        assert client.stats.retries >= hits


async def test_a_write_dropped_after_commit_is_not_retried(portal: FakePortal) -> None:
    portal.faults.inject("drop_after", method=ADD)
    async with DocgenClient.from_webhook(portal.webhook_url, retry=FAST_RETRY) as client:
        with pytest.raises(OutcomeUnknownError) as caught:
            await client.call(ADD, {"fields": {"name": "once", "template": "{NUMBER}"}})
    assert caught.value.method == ADD
    assert [n["name"] for n in portal.numerators.values()] == ["once"]  # committed exactly once
    assert portal.stats.http_by_method[ADD] == 1


async def test_a_read_dropped_after_commit_is_retried(portal: FakePortal) -> None:
    good = portal.seed_numerator("x")
    portal.faults.inject("drop_after", method=GET)
    async with DocgenClient.from_webhook(portal.webhook_url, retry=FAST_RETRY) as client:
        result = await client.call(GET, {"id": good})
    assert int(result["numerator"]["id"]) == good
    assert portal.stats.http_by_method[GET] == 2
