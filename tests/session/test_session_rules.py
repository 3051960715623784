"""The session's rules (DESIGN.md §4) against the fake portal.

Limits are scaled down (buckets of a few requests, budgets of a tenth of a second) so that no
test waits out a real-sized limit; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from bitrix_docgen_async import (
    ApiError,
    ClientStateError,
    DocgenClient,
    InvalidRequestError,
    NotFoundError,
    OperatingBudget,
    OverloadError,
    RateLimit,
)
from bitrix_docgen_async.testing import CallContext, FakePortal, PortalError
from tests.helpers import FAST_RETRY

GET = "crm.documentgenerator.numerator.get"
ADD = "crm.documentgenerator.numerator.add"
LIST = "crm.documentgenerator.numerator.list"
OVERLOADED = "custom.overloaded"
FAST = RateLimit(burst=50, per_second=50.0)


async def eventually(condition: Callable[[], bool], within: float = 2.0) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def _overloaded(ctx: CallContext, params: dict[str, Any]) -> Any:
    raise PortalError("OVERLOAD_LIMIT", "REST API is blocked due to overload", 503)


# -- 6. OVERLOAD_LIMIT ----------------------------------------------------------------------------


async def test_overload_limit_is_final_and_not_retried(portal: FakePortal) -> None:
    portal.registry.register(OVERLOADED, _overloaded)
    async with DocgenClient.from_webhook(
        portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY, linger=0
    ) as client:
        # Declared idempotent, so that only the error's kind can be what stops a retry.
        with pytest.raises(OverloadError) as caught:
            await asyncio.wait_for(client.call(OVERLOADED, idempotent=True), 2.0)
    assert caught.value.code == "OVERLOAD_LIMIT"
    assert caught.value.status == 503
    assert not caught.value.retryable
    assert portal.stats.requests == 1
    assert client.stats.retries == 0
    assert client.stats.rate_limited == 0


async def test_overload_limit_inside_a_batch_is_not_retried(portal: FakePortal) -> None:
    portal.registry.register(OVERLOADED, _overloaded)
    nid = portal.seed_numerator("x")
    async with DocgenClient.from_webhook(
        portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY
    ) as client:
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                client.call(OVERLOADED, idempotent=True),
                client.call(GET, {"id": nid}),
                client.call(OVERLOADED, idempotent=True),
                return_exceptions=True,
            ),
            2.0,
        )
    assert isinstance(outcomes[0], OverloadError) and isinstance(outcomes[2], OverloadError)
    assert not isinstance(outcomes[1], BaseException)
    assert int(outcomes[1]["numerator"]["id"]) == nid
    assert portal.stats.requests == 1
    assert portal.stats.http_by_method["batch"] == 1
    assert client.stats.retries == 0


# -- 7. 503 QUERY_LIMIT_EXCEEDED drains the client's bucket ---------------------------------------


async def _fill_the_portal_bucket(portal: FakePortal, nid: int, requests: int) -> None:
    """Another client behind the same IP spends the portal's bucket (unknown to ours)."""
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=None, linger=0) as other:
        for _ in range(requests):
            await other.call(GET, {"id": nid})


async def test_a_503_empties_the_client_bucket_so_the_next_requests_wait() -> None:
    # The portal holds 2 requests and drains 5/s; the client believes in a bucket of 50.
    rate = 5.0
    portal_limit = RateLimit(burst=2, per_second=rate)
    client_limit = RateLimit(burst=50, per_second=rate)
    async with FakePortal(rate_limit=portal_limit) as portal:
        nid = portal.seed_numerator("x")
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=client_limit, retry=FAST_RETRY, linger=0
        ) as client:
            await _fill_the_portal_bucket(portal, nid, 2)
            started = time.perf_counter()
            result = await asyncio.wait_for(client.call(GET, {"id": nid}), 2.0)
            assert int(result["numerator"]["id"]) == nid
            assert portal.stats.rejected_rate_limit >= 1
            assert client.stats.rate_limited == portal.stats.rejected_rate_limit
            assert client.stats.retries == client.stats.rate_limited
            # The retry waited for a token although the client's own bucket had 48 left.
            assert client.stats.limiter_wait_s > 0
            # So does each following request while the emptied bucket refills: the retry and
            # two more calls go at the bucket's pace, not at once.
            for _ in range(2):
                await asyncio.wait_for(client.call(GET, {"id": nid}), 2.0)
            elapsed = time.perf_counter() - started
        assert elapsed >= 3 / rate - 0.01
        assert client.stats.rate_limited == portal.stats.rejected_rate_limit
        assert client.stats.http_requests == 3 + client.stats.rate_limited


async def test_staggered_callers_all_succeed_after_a_503() -> None:
    rate = 5.0
    async with FakePortal(rate_limit=RateLimit(burst=2, per_second=rate)) as portal:
        nid = portal.seed_numerator("x")
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=RateLimit(50, rate), retry=FAST_RETRY, linger=0
        ) as client:
            await _fill_the_portal_bucket(portal, nid, 2)
            tasks = []
            for _ in range(6):
                tasks.append(asyncio.create_task(client.call(GET, {"id": nid})))
                await asyncio.sleep(0.005)
            results = await asyncio.wait_for(asyncio.gather(*tasks), 5.0)
        assert [int(r["numerator"]["id"]) for r in results] == [nid] * 6
        assert portal.stats.rejected_rate_limit >= 1
        assert client.stats.rate_limited == portal.stats.rejected_rate_limit
        assert client.stats.retries >= client.stats.rate_limited
        assert client.stats.limiter_wait_s > 0


# -- 8. 429 suspends only that method -------------------------------------------------------------


async def _expensive_suspended_cheap_flows(
    client: DocgenClient, portal: FakePortal, nid: int
) -> None:
    adds = [
        asyncio.create_task(client.call(ADD, {"fields": {"name": f"n{i}", "template": "{NUMBER}"}}))
        for i in range(3)
    ]
    await eventually(lambda: portal.stats.rejected_operating >= 1)
    assert not all(task.done() for task in adds)  # the refused one waits
    gets = await asyncio.wait_for(
        asyncio.gather(*(client.call(GET, {"id": nid}) for _ in range(5))), 0.5
    )
    assert [int(r["numerator"]["id"]) for r in gets] == [nid] * 5
    assert not all(task.done() for task in adds)  # still suspended while the reads flowed
    outcomes = await asyncio.wait_for(asyncio.gather(*adds, return_exceptions=True), 5.0)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert failures == []
    assert sorted(n["name"] for n in portal.numerators.values()) == ["n0", "n1", "n2", "x"]
    assert portal.stats.rejected_operating >= 1
    assert client.stats.rate_limited == portal.stats.rejected_operating


async def test_a_429_suspends_only_that_method_when_the_client_keeps_a_ledger() -> None:
    # The portal allows 0.1 s of numerator.add per 0.5 s; each costs 0.06 s. The client's own
    # budget is far larger (another process shares the webhook, say), so it gets the 429.
    portal_budget = OperatingBudget(limit_s=0.1, window_s=0.5, buckets=5)
    client_budget = OperatingBudget(limit_s=10.0, window_s=0.5, buckets=5)
    async with FakePortal(
        rate_limit=FAST,
        operating_budget=portal_budget,
        # Pinned to the documented model: batched adds are billed to numerator.add, which the
        # client's per-method ledger assumes (issue 13: the ledger must learn `batch` billing).
        operating_billing="method",
        operating_floor=0.0,  # adds of 0.06 s: under the live portal's 0.1 s floor
        method_costs={ADD: 0.06},
    ) as portal:
        nid = portal.seed_numerator("x")
        async with DocgenClient.from_webhook(
            portal.webhook_url,
            rate_limit=FAST,
            operating_budget=client_budget,
            retry=FAST_RETRY,
            linger=0,
        ) as client:
            await _expensive_suspended_cheap_flows(client, portal, nid)
        assert portal.stats.rejected_operating <= 2  # suspended, not hammering


async def test_a_429_suspends_only_that_method_without_a_client_budget() -> None:
    portal_budget = OperatingBudget(limit_s=0.1, window_s=0.5, buckets=5)
    async with FakePortal(
        rate_limit=FAST,
        operating_budget=portal_budget,
        # Pinned to the documented model: batched adds are billed to numerator.add, which the
        # client's per-method ledger assumes (issue 13: the ledger must learn `batch` billing).
        operating_billing="method",
        operating_floor=0.0,  # adds of 0.06 s: under the live portal's 0.1 s floor
        method_costs={ADD: 0.06},
    ) as portal:
        nid = portal.seed_numerator("x")
        async with DocgenClient.from_webhook(
            portal.webhook_url,
            rate_limit=FAST,
            operating_budget=None,
            retry=FAST_RETRY,
            linger=0,
        ) as client:
            await _expensive_suspended_cheap_flows(client, portal, nid)
        assert portal.stats.rejected_operating <= 2


# -- 9. linger and flush --------------------------------------------------------------------------


async def test_linger_zero_sends_at_once(portal: FakePortal) -> None:
    nid = portal.seed_numerator("x")
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST, linger=0) as client:
        for _ in range(3):
            started = time.perf_counter()
            result = await asyncio.wait_for(client.call(GET, {"id": nid}), 1.0)
            assert int(result["numerator"]["id"]) == nid
            assert time.perf_counter() - started < 0.5
        results = await asyncio.wait_for(
            asyncio.gather(*(client.call(GET, {"id": nid}) for _ in range(10))), 1.0
        )
    assert len(results) == 10
    assert client.stats.commands == portal.stats.commands == 13


@pytest.mark.parametrize("options", [{"linger": -0.1}, {"batch_time_target": 0.0}])
async def test_bad_session_options_are_refused_without_leaking_a_session(
    portal: FakePortal, monkeypatch: pytest.MonkeyPatch, options: dict[str, float]
) -> None:
    created: list[aiohttp.ClientSession] = []
    real = aiohttp.ClientSession

    def recording(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        session = real(*args, **kwargs)
        created.append(session)
        return session

    monkeypatch.setattr(aiohttp, "ClientSession", recording)
    try:
        # Refused when the client is built, before any session exists.
        with pytest.raises(ValueError, match=r"linger|batch_time_target"):
            DocgenClient.from_webhook(portal.webhook_url, **options)
        leaked = [session for session in created if not session.closed]
    finally:
        for session in created:  # whatever the outcome, leave nothing for the GC to warn about
            await session.close()
    assert leaked == []


async def _slow_call_in_flight(client: DocgenClient, portal: FakePortal) -> asyncio.Task[Any]:
    """A call that keeps a request in flight: calls made meanwhile linger to share a batch."""
    slow = asyncio.create_task(client.call(LIST))
    await eventually(lambda: portal.stats.requests == 1)
    return slow


async def test_flush_sends_without_waiting_for_the_linger() -> None:
    async with FakePortal(rate_limit=FAST, method_costs={LIST: 0.5}) as portal:
        await _flush_sends_without_waiting_for_the_linger(portal)


async def _flush_sends_without_waiting_for_the_linger(portal: FakePortal) -> None:
    nid = portal.seed_numerator("x")
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST, linger=5.0) as client:
        slow = await _slow_call_in_flight(client, portal)
        pending = [asyncio.create_task(client.call(GET, {"id": nid})) for _ in range(3)]
        await asyncio.sleep(0.1)
        assert not any(task.done() for task in pending)  # the linger holds them
        assert portal.stats.requests == 1
        started = time.perf_counter()
        client.flush()
        results = await asyncio.wait_for(asyncio.gather(*pending), 1.0)
        elapsed = time.perf_counter() - started
        # A call made and flushed at once does not wait either.
        started_again = time.perf_counter()
        task = asyncio.create_task(client.call(GET, {"id": nid}))
        client.flush()
        await asyncio.wait_for(task, 1.0)
        elapsed_again = time.perf_counter() - started_again
        await asyncio.wait_for(slow, 2.0)
    assert [int(r["numerator"]["id"]) for r in results] == [nid] * 3
    assert elapsed < 0.5 and elapsed_again < 0.5
    assert portal.stats.http_by_method["batch"] == 1  # the three went together
    assert portal.stats.requests == 3


# -- 10. cancellation and closing -----------------------------------------------------------------


async def test_a_caller_that_gives_up_does_not_break_the_others() -> None:
    async with FakePortal(rate_limit=FAST, method_costs={LIST: 0.3}) as portal:
        nid = portal.seed_numerator("x")
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY
        ) as client:
            impatient = asyncio.create_task(asyncio.wait_for(client.call(LIST), 0.05))
            others = [asyncio.create_task(client.call(GET, {"id": nid})) for _ in range(5)]
            with pytest.raises(TimeoutError):
                await impatient
            results = await asyncio.wait_for(asyncio.gather(*others), 2.0)
            assert [int(r["numerator"]["id"]) for r in results] == [nid] * 5
            # The session still works after the reply of the abandoned call came back.
            after = await asyncio.wait_for(
                asyncio.gather(client.call(LIST), client.call(GET, {"id": nid})), 2.0
            )
            assert int(after[1]["numerator"]["id"]) == nid
            assert after[0]["numerators"][0]["name"] == "x"


async def test_a_call_cancelled_while_queued_is_never_sent() -> None:
    async with FakePortal(rate_limit=FAST, method_costs={LIST: 0.3}) as portal:
        await _a_call_cancelled_while_queued_is_never_sent(portal)


async def _a_call_cancelled_while_queued_is_never_sent(portal: FakePortal) -> None:
    nid = portal.seed_numerator("x")
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST, linger=5.0) as client:
        await _slow_call_in_flight(client, portal)
        dropped = asyncio.create_task(client.call(ADD, {"fields": {"name": "no", "template": "x"}}))
        kept = asyncio.create_task(client.call(GET, {"id": nid}))
        await asyncio.sleep(0.01)
        dropped.cancel()
        client.flush()
        result = await asyncio.wait_for(kept, 1.0)
        assert dropped.cancelled()
    assert int(result["numerator"]["id"]) == nid
    assert portal.stats.by_method[ADD] == 0
    assert [n["name"] for n in portal.numerators.values()] == ["x"]


async def test_a_call_queued_when_the_client_exits_fails_with_client_state_error() -> None:
    async with FakePortal(rate_limit=FAST, method_costs={LIST: 0.3}) as portal:
        await _a_call_queued_when_the_client_exits_fails(portal)


async def _a_call_queued_when_the_client_exits_fails(portal: FakePortal) -> None:
    nid = portal.seed_numerator("x")
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST, linger=5.0) as client:
        await _slow_call_in_flight(client, portal)
        queued = asyncio.create_task(client.call(GET, {"id": nid}))
        await asyncio.sleep(0.01)
        assert not queued.done()
        started = time.perf_counter()
    assert time.perf_counter() - started < 1.0  # exiting does not wait out the linger
    with pytest.raises(ClientStateError):
        await asyncio.wait_for(queued, 1.0)
    assert portal.stats.requests == 1  # the slow call only
    with pytest.raises(ClientStateError):
        await client.call(GET, {"id": nid})


# -- 11. stats ------------------------------------------------------------------------------------


async def test_stats_match_what_the_portal_saw(portal: FakePortal) -> None:
    ids = [portal.seed_numerator(f"N{i}") for i in range(10)]
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        results = await asyncio.wait_for(
            asyncio.gather(*(client.call(GET, {"id": ids[k % 10]}) for k in range(120))), 5.0
        )
        single = await client.call(GET, {"id": ids[0]})
    assert [int(r["numerator"]["id"]) for r in results] == [ids[k % 10] for k in range(120)]
    assert int(single["numerator"]["id"]) == ids[0]
    stats = client.stats
    assert stats.http_requests == portal.stats.requests == 4
    assert stats.batches == portal.stats.http_by_method["batch"] == 3
    assert sorted(portal.stats.batch_sizes) == [20, 50, 50]
    assert stats.commands == portal.stats.commands == 121
    assert stats.retries == stats.rate_limited == 0


# -- 12. per-command errors in a batch ------------------------------------------------------------


async def test_errors_inside_a_mixed_batch_have_the_direct_call_classes(
    portal: FakePortal,
) -> None:
    nid = portal.seed_numerator("x")
    missing = {"id": 987654}
    no_template = {"fields": {"name": "lacks a template"}}
    async with DocgenClient.from_webhook(
        portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY
    ) as client:
        direct: list[ApiError] = []
        for method, params in ((GET, missing), (ADD, no_template)):
            try:
                await client.call(method, params)
            except ApiError as exc:
                direct.append(exc)
        requests_before = portal.stats.requests
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                client.call(GET, {"id": nid}),
                client.call(GET, missing),
                client.call(ADD, {"fields": {"name": "ok", "template": "{NUMBER}"}}),
                client.call(ADD, no_template),
                client.call(LIST),
                return_exceptions=True,
            ),
            2.0,
        )
    assert portal.stats.requests - requests_before == 1
    assert portal.stats.http_by_method["batch"] == 1
    assert [type(e) for e in direct] == [NotFoundError, InvalidRequestError]
    assert all(e.status == 400 for e in direct)
    missing_error, no_template_error = outcomes[1], outcomes[3]
    assert type(missing_error) is type(direct[0]) is NotFoundError
    assert type(no_template_error) is type(direct[1]) is InvalidRequestError
    assert isinstance(missing_error, NotFoundError)
    assert isinstance(no_template_error, InvalidRequestError)
    assert missing_error.status is None and missing_error.method == GET  # from inside the batch
    assert no_template_error.status is None and no_template_error.method == ADD
    assert int(outcomes[0]["numerator"]["id"]) == nid  # type: ignore[index]
    assert outcomes[2]["numerator"]["name"] == "ok"  # type: ignore[index]
    assert outcomes[4]["numerators"]  # type: ignore[index]
    assert sorted(n["name"] for n in portal.numerators.values()) == ["ok", "x"]
