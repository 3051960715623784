"""``client.stats``: each counter has one meaning, checked against what the portal saw (issue 16).

The counting itself lives in the engine (session.py, batch.py); these tests pin the meanings
documented on :class:`ClientStats`.
"""

from __future__ import annotations

import asyncio

from bitrix_docgen_async import ClientStats, DocgenClient, RateLimit
from bitrix_docgen_async.testing import FakePortal, Faults
from tests.helpers import FAST_RETRY

FAST = RateLimit(burst=50, per_second=200.0)
GET = "crm.documentgenerator.numerator.get"


def test_every_counter_is_documented() -> None:
    import attrs

    doc = ClientStats.__doc__ or ""
    for field in attrs.fields(ClientStats):
        assert f"{field.name}:" in doc, field.name


async def test_counters_match_what_the_portal_saw(portal: FakePortal) -> None:
    ids = [portal.seed_numerator(f"n{i}") for i in range(120)]
    async with DocgenClient.from_webhook(
        portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY
    ) as client:
        await client.call(GET, {"id": ids[0]})  # alone: one request, not a batch
        alone = (client.stats.http_requests, client.stats.batches)
        await asyncio.gather(*(client.numerators.get(i) for i in ids))
        stats = client.stats
    assert alone[0] == 1
    assert stats.http_requests == portal.stats.requests
    assert stats.batches == portal.stats.http_by_method["batch"]  # batch requests only
    assert stats.batches <= stats.http_requests
    assert stats.commands == portal.stats.commands == 121
    assert stats.retries == 0 and stats.rate_limited == 0 and stats.downloads == 0


async def test_batches_never_exceed_http_requests_when_connections_drop() -> None:
    async with FakePortal(rate_limit=FAST, faults=Faults(seed=3, drop_before=0.3)) as portal:
        ids = [portal.seed_numerator(f"n{i}") for i in range(200)]
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY, linger=0.01
        ) as client:
            await asyncio.gather(*(client.numerators.get(i) for i in ids))
            stats = client.stats
        dropped = portal.stats.faults["drop_before"]
    assert dropped > 0
    assert stats.retries > 0
    # A request dropped without an answer is not an HTTP request that got one, batch or not.
    assert stats.http_requests == portal.stats.requests - dropped
    assert stats.batches <= stats.http_requests
