"""Routing across the two budgets a portal that bills ``batch`` whole offers (issue 13).

docs/portal.md#how-batch-is-billed: a whole ``batch`` request is billed to ``batch``, a direct
call to its own method. Budgets are scaled down (a tenth of a second per minute, so that none
frees during a test) and every wait is bounded.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest

from bitrix_docgen_async import DocgenClient, OperatingBudget, RateLimit
from bitrix_docgen_async.core.planner import Route, route
from bitrix_docgen_async.errors import RateLimitedError
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY

DOC_ADD = "crm.documentgenerator.document.add"
GET = "crm.documentgenerator.numerator.get"
LIST = "crm.documentgenerator.numerator.list"


def test_route_sends_direct_only_what_batch_s_budget_cannot_take() -> None:
    def go(method: str, **overrides: bool) -> Route:
        # ``method`` plays no part: reads and heavy writes are routed by the same rule.
        flags = {"separate_budgets": True, "batch_room": True, "own_room": True}
        flags["tokens_free"] = True
        flags.update(overrides)
        return route(**flags)

    # While ``batch`` has room a direct call buys nothing but costs a request.
    assert go(DOC_ADD) is Route.BATCH
    assert go(GET) is Route.BATCH
    # ``batch`` spent: direct, onto the method's own budget (or none, for a quick read) ...
    assert go(DOC_ADD, batch_room=False) is Route.DIRECT
    assert go(GET, batch_room=False) is Route.DIRECT
    # ... but only when that budget has room, a token is free at once, and billing is apart.
    assert go(DOC_ADD, batch_room=False, own_room=False) is Route.BATCH  # waits for one
    assert go(DOC_ADD, batch_room=False, tokens_free=False) is Route.BATCH  # the bucket binds
    assert go(DOC_ADD, batch_room=False, separate_budgets=False) is Route.BATCH  # "method"
    assert go(GET, separate_budgets=False, batch_room=False) is Route.BATCH


# -- end to end: the portal's ``batch`` budget is spent --------------------------------------

#: Nothing frees during a test: a third of a second per minute.
SPENT = OperatingBudget(limit_s=0.3, window_s=60.0, buckets=10)
FAST = RateLimit(burst=50, per_second=50.0)


async def _spend_batch(client: DocgenClient) -> None:
    """Batched lists until the client's ledger has no room in ``batch`` for one more.

    Lists, not the gets the test reads with afterwards: a list that a loaded machine sends
    alone goes direct and is billed to its own method, never to the gets' budget.
    """
    limiter = client.session.limiter
    patient = client.with_options(queue_timeout=0.5)
    while await limiter.has_room("batch", client.session.costs.estimate(LIST)):
        reads = [patient.call(LIST) for _ in range(5)]
        await asyncio.gather(*reads, return_exceptions=True)


@pytest.mark.parametrize("routing", ["auto", "off"])
async def test_a_spent_batch_budget_holds_batched_traffic_and_direct_writes_go_on(
    routing: Literal["auto", "off"],
) -> None:
    async with asyncio.timeout(30):  # every wait below is bounded; a hang fails here
        async with FakePortal(
            rate_limit=FAST,
            operating_budget=SPENT,
            operating_floor=0.0,  # costs of 10-20 ms: under the live portal's 0.1 s floor
            method_costs={DOC_ADD: 0.02, GET: 0.01, LIST: 0.01},
        ) as portal:
            template = portal.seed_template()
            nid = portal.seed_numerator("x")
            async with DocgenClient.from_webhook(
                portal.webhook_url,
                rate_limit=FAST,
                operating_budget=SPENT,
                retry=FAST_RETRY,
                linger=0.002,
                budget_routing=routing,
            ) as client:
                await _spend_batch(client)
                assert client.stats.billing_model == "batch"
                spent = portal.stats.billed("batch")
                assert spent > SPENT.limit_s / 2
                params = [
                    {"templateId": template, "entityTypeId": 2, "entityId": i} for i in (1, 2, 3)
                ]
                if routing == "auto":
                    before = client.stats.direct_commands
                    docs = await asyncio.gather(*(client.call(DOC_ADD, p) for p in params))
                    assert len({d["document"]["id"] for d in docs}) == 3
                    reads = await asyncio.gather(*(client.call(GET, {"id": nid}) for _ in range(3)))
                    assert len(reads) == 3
                    # All went direct: billed to their own methods, not to ``batch``.
                    assert client.stats.direct_commands == before + 6
                    # An explicit batch can only go as a batch: it waits for ``batch``. Spent
                    # down again first, with the same estimate the batch will reserve.
                    await _spend_batch(client)
                    spent = portal.stats.billed("batch")
                    with pytest.raises(TimeoutError):
                        async with asyncio.timeout(0.3):
                            async with client.batch() as batch:
                                batch.call(LIST)
                else:
                    # Without routing every batchable call is batched: reads and writes wait
                    # and fail by their queue_timeout, unsent.
                    for method, args in ((GET, {"id": nid}), (DOC_ADD, params[0])):
                        with pytest.raises(RateLimitedError, match="QUEUE_TIMEOUT"):
                            await client.with_options(queue_timeout=0.2).call(method, args)
                    assert portal.stats.by_method[DOC_ADD] == 0
            assert portal.stats.billed("batch") == spent  # nothing more was batched
        assert portal.stats.rejected_operating == 0
        assert client.stats.rate_limited == 0
        assert spent <= SPENT.limit_s + 1e-9


@pytest.mark.parametrize("routing", ["auto", "off"])
async def test_before_a_batch_reply_has_shown_the_model_batched_heavy_writes_stay_short(
    routing: Literal["auto", "off"],
) -> None:
    # Until its reply, such a batch holds both budgets and nothing can be routed: with
    # routing, the warm-up that shows the model carries at most about a second of writes.
    async with asyncio.timeout(20):
        async with FakePortal(
            rate_limit=FAST, operating_floor=0.0, method_costs={DOC_ADD: 0.03}
        ) as portal:
            template = portal.seed_template()
            params = [
                {"templateId": template, "entityTypeId": 2, "entityId": i} for i in range(1, 31)
            ]
            async with DocgenClient.from_webhook(
                portal.webhook_url, rate_limit=FAST, linger=0, budget_routing=routing
            ) as client:
                await client.call(DOC_ADD, params[0])  # measured; a direct call shows no model
                estimate = client.session.costs.estimate(DOC_ADD)
                await asyncio.gather(*(client.call(DOC_ADD, p) for p in params[1:]))
                assert client.stats.billing_model == "batch"
        first = portal.stats.batch_sizes[0]
        if routing == "auto":
            assert 2 <= first <= 1.0 / estimate
        else:
            assert first == 29  # one batch, within the 20 s target
        assert portal.stats.rejected_operating == 0


@pytest.mark.parametrize("model", ["batch", "method"])
async def test_heavy_writes_are_routed_direct_only_once_batch_billing_has_shown(
    model: Literal["batch", "method"],
) -> None:
    # Under "method" billing a direct call spends the same budget as a batched one: nothing
    # to gain, so after the probe every write stays batched; under "batch" billing, once
    # ``batch``'s budget (0.3 s here: 30 adds of the 40) has no room, they go direct while
    # document.add's own budget has room.
    budget = SPENT if model == "batch" else OperatingBudget()
    async with asyncio.timeout(20):
        async with FakePortal(
            rate_limit=FAST,
            operating_billing=model,
            operating_budget=budget,
            operating_floor=0.0,
            method_costs={DOC_ADD: 0.01},
        ) as portal:
            template = portal.seed_template()
            params = [
                {"templateId": template, "entityTypeId": 2, "entityId": i} for i in range(1, 41)
            ]
            async with DocgenClient.from_webhook(
                portal.webhook_url, rate_limit=FAST, operating_budget=budget, linger=0
            ) as client:
                await client.call(DOC_ADD, params[0])  # the probe: alone, so direct
                await asyncio.gather(*(client.call(DOC_ADD, p) for p in params[1:20]))
                assert client.stats.billing_model == model
                before = client.stats.direct_commands
                await asyncio.gather(*(client.call(DOC_ADD, p) for p in params[20:]))
                routed = client.stats.direct_commands - before
        if model == "method":
            assert routed == 0 and portal.stats.billed("batch") == 0
        else:
            assert routed > 0 and portal.stats.billed(DOC_ADD) > 0
        assert portal.stats.rejected_operating == 0
