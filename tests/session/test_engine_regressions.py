"""Regressions of issue 11's observations 1, 2, 3 and 9, through the public client.

Each test is bounded (``asyncio.wait_for`` around what used to hang) so that a regression fails
instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from bitrix_docgen_async import (
    ClientStateError,
    DocgenClient,
    NotFoundError,
    OperatingBudget,
    RateLimit,
)
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY

GET = "crm.documentgenerator.numerator.get"
ADD = "crm.documentgenerator.numerator.add"
LIST = "crm.documentgenerator.numerator.list"
FAST = RateLimit(burst=50, per_second=50.0)


# -- observation 1: leaving the client after a failed gather ------------------------------------


@pytest.mark.parametrize("count", [3, 60, 130])
async def test_leaving_the_client_after_a_failed_gather_returns_and_sends_nothing_more(
    count: int,
) -> None:
    async with FakePortal(rate_limit=FAST) as portal:
        nid = portal.seed_numerator("x")

        async def scenario() -> None:
            async with DocgenClient.from_webhook(
                portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY
            ) as client:
                calls = [client.call(GET, {"id": nid}) for _ in range(count)]
                # The missing one comes first: its batch answers before the rest is sent.
                await asyncio.gather(client.call(GET, {"id": 987654}), *calls)

        leaving = asyncio.create_task(scenario())
        done, _ = await asyncio.wait({leaving}, timeout=5.0)
        if not done:
            leaving.cancel()
            await asyncio.gather(leaving, return_exceptions=True)
        assert done, "__aexit__ did not return"
        with pytest.raises(NotFoundError):
            leaving.result()
        sent = portal.stats.commands
        await asyncio.sleep(0.05)
        # Nothing queued at the exit went out afterwards.
        assert portal.stats.commands == sent
        assert sent <= count + 1


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
async def test_leaving_the_client_right_after_a_flush_returns(turns: int) -> None:
    # The flusher used to wait out its linger in asyncio.wait_for, which on Python 3.11 returns
    # normally when the cancel lands just after the awaited event fired: the cancel was lost,
    # the flusher went on sending, and __aexit__ waited for it forever.
    async with FakePortal(rate_limit=FAST) as portal:
        nid = portal.seed_numerator("x")
        client = DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY, linger=5.0
        )

        async def scenario() -> list[asyncio.Task[object]]:
            async with client:
                # A slow call in flight, so that the next ones linger.
                first = asyncio.create_task(client.call(LIST))
                await asyncio.sleep(0)
                queued = [asyncio.create_task(client.call(GET, {"id": nid})) for _ in range(3)]
                await asyncio.sleep(0.01)
                client.flush()
                for _ in range(turns):
                    await asyncio.sleep(0)
            return [first, *queued]

        # Not wait_for: the old close() suppressed the CancelledError of its own await and so
        # hid the timeout. A plain bounded wait tells whether __aexit__ returned.
        leaving = asyncio.create_task(scenario())
        done, _ = await asyncio.wait({leaving}, timeout=3.0)
        if not done:
            leaving.cancel()
            await asyncio.gather(leaving, return_exceptions=True)
        assert done, "__aexit__ did not return"
        tasks = leaving.result()
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 1.0)
        for outcome in outcomes:
            assert isinstance(outcome, dict | ClientStateError), outcome


# -- observation 2: PDF waiters and close ---------------------------------------------------------


async def test_a_pdf_waiter_fails_with_client_state_error_when_the_client_closes() -> None:
    async with FakePortal(rate_limit=FAST, pdf_delay=3600.0) as portal:
        doc_id = portal.seed_document(portal.seed_template(), 2, 7)
        client = DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY)
        async with client:
            waiter = asyncio.create_task(client.documents.wait_for_pdf([doc_id], timeout=None))
            for _ in range(200):  # until the poller has looked once
                if client.pdf_poller.rounds:
                    break
                await asyncio.sleep(0.005)
            assert not waiter.done()
        with pytest.raises(ClientStateError):
            await asyncio.wait_for(waiter, 2.0)


# -- observation 3: head-of-line blocking ---------------------------------------------------------


async def test_a_spent_budget_holds_back_only_its_own_method_however_many_wait() -> None:
    # numerator.add's budget (client side) is 1 s per 10 min; the first add books 1 s of it.
    budget = OperatingBudget(limit_s=1.0, window_s=600.0, buckets=10)
    async with FakePortal(
        rate_limit=FAST, operating_budget=None, method_costs={ADD: 1.0}
    ) as portal:
        portal.seed_numerator("x")
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, operating_budget=budget, retry=FAST_RETRY
        ) as client:
            await client.call(ADD, {"fields": {"name": "first", "template": "{NUMBER}"}})
            waiting = [
                asyncio.create_task(
                    client.call(ADD, {"fields": {"name": f"n{i}", "template": "{NUMBER}"}})
                )
                for i in range(2500)
            ]
            await asyncio.sleep(0)
            listed = await asyncio.wait_for(client.call(LIST), 5.0)
            assert [n["name"] for n in listed["numerators"]][:2] == ["x", "first"]
            assert not any(task.done() for task in waiting)
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(o, ClientStateError) for o in outcomes)
        assert portal.stats.by_method[ADD] == 1


# -- observation 9: a second event loop -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_client_works_in_a_second_event_loop(tmp_path: Path) -> None:
    port = _free_port()
    holder: dict[str, Any] = {}

    async def run(round_: int) -> list[Path]:
        async with FakePortal(rate_limit=FAST, pdf_delay=0.0, port=port) as portal:
            if "client" in holder:  # the same webhook as the first round's portal
                portal.webhook_code = holder["code"]
            template = portal.seed_template()
            ids = [portal.seed_document(template, 2, i + 1) for i in range(10)]
            if "client" not in holder:
                holder["code"] = portal.webhook_code
                holder["client"] = DocgenClient.from_webhook(
                    portal.webhook_url, rate_limit=FAST, download_concurrency=2
                )
            client = holder["client"]
            async with client:
                return await asyncio.wait_for(
                    asyncio.gather(
                        *(client.documents.download(i, tmp_path / str(round_)) for i in ids)
                    ),
                    10.0,
                )

    for round_ in range(2):
        paths = asyncio.run(run(round_))
        assert len(paths) == 10 and all(p.exists() for p in paths)
