"""The engine against an in-memory transport and a manual clock: no sockets, no real time.

Nothing here asserts a wall-clock duration: time moves only when a test advances the clock, and
"goes out at once" means "answered without the clock moving".
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bitrix_docgen_async import (
    ClientStateError,
    DocgenClient,
    OperatingBudget,
    RateLimitedError,
    TransportError,
)
from bitrix_docgen_async._retries import wait_to_retry
from bitrix_docgen_async.core.retry import RetryPolicy
from bitrix_docgen_async.limiter import Limiter, MemoryBackend
from tests.session.fakes import WEBHOOK, FakeClock, FakeTransport, turns

DOC_ADD = "crm.documentgenerator.document.add"
ADD = "crm.documentgenerator.numerator.add"
GET = "crm.documentgenerator.numerator.get"
LIST = "crm.documentgenerator.numerator.list"
#: numerator.add may run 1 s per 10 minutes: one add spends it.
TINY = OperatingBudget(limit_s=1.0, window_s=600.0, buckets=10)


def make_client(transport: FakeTransport, clock: FakeClock, **options: Any) -> DocgenClient:
    options.setdefault("rate_limit", None)
    return DocgenClient.from_webhook(
        WEBHOOK, transport=transport, clock=clock, sleep=clock.sleep, **options
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def spent(clock: FakeClock) -> AsyncIterator[tuple[DocgenClient, FakeTransport]]:
    """A client whose numerator.add budget is spent for the next 10 minutes."""
    transport = FakeTransport(costs={ADD: 1.0})
    async with make_client(transport, clock, operating_budget=TINY) as client:
        await client.call(ADD, {"name": "first"})
        yield client, transport


# -- lone calls, lingering -------------------------------------------------------------------


async def test_a_lone_call_goes_out_without_waiting_for_the_linger(clock: FakeClock) -> None:
    transport = FakeTransport()
    async with make_client(transport, clock, linger=5.0) as client:
        for i in range(3):
            result = await asyncio.wait_for(client.call(GET, {"id": i}), 1.0)
            assert result["id"] == str(i)
    assert clock.now == 1000.0  # answered without the clock moving
    assert [m for m, _ in transport.requests] == [GET] * 3


async def test_calls_made_while_a_request_is_in_flight_linger_to_share_a_batch(
    clock: FakeClock,
) -> None:
    transport = FakeTransport()
    async with make_client(transport, clock, linger=0.005) as client:
        transport.gate = asyncio.Event()
        first = asyncio.create_task(client.call(LIST))
        await turns()
        later = [asyncio.create_task(client.call(GET, {"id": i})) for i in range(3)]
        await turns()
        assert len(transport.requests) == 1  # they linger while the list is in flight
        await clock.run_for(0.005)
        assert len(transport.requests) == 2  # then go together
        transport.gate.set()
        await asyncio.wait_for(asyncio.gather(first, *later), 1.0)
    assert [m for m, _ in transport.requests] == [LIST, "batch"]
    assert len(transport.requests[1][1]["cmd"]) == 3


async def test_lingering_ends_when_nothing_is_in_flight_any_more(clock: FakeClock) -> None:
    transport = FakeTransport()
    async with make_client(transport, clock, linger=10.0) as client:
        transport.gate = asyncio.Event()
        first = asyncio.create_task(client.call(LIST))
        await turns()
        later = [asyncio.create_task(client.call(GET, {"id": i})) for i in range(3)]
        await turns()
        assert len(transport.requests) == 1
        transport.gate.set()  # the list is answered: the three go without waiting 10 s
        await asyncio.wait_for(asyncio.gather(first, *later), 1.0)
    assert clock.now == 1000.0
    assert [m for m, _ in transport.requests] == [LIST, "batch"]


async def test_a_thousand_concurrent_gets_cost_twenty_requests(clock: FakeClock) -> None:
    transport = FakeTransport()
    async with make_client(transport, clock) as client:
        results = await asyncio.gather(*(client.call(GET, {"id": i}) for i in range(1000)))
        # Twenty batches without the clock moving: none of them waited for a linger.
        assert clock.now == 1000.0
    assert [r["id"] for r in results] == [str(i) for i in range(1000)]
    assert [m for m, _ in transport.requests] == ["batch"] * 20
    assert client.stats.http_requests == 20 and client.stats.batches == 20


# -- observation 3: a spent budget holds back only its own key ------------------------------


async def test_a_read_is_answered_while_thousands_of_writes_wait_for_their_budget(
    spent: tuple[DocgenClient, FakeTransport],
) -> None:
    client, transport = spent
    waiting = [asyncio.create_task(client.call(ADD, {"name": f"n{i}"})) for i in range(2500)]
    await turns()
    listed = await asyncio.wait_for(client.call(LIST), 1.0)
    assert listed["method"] == LIST
    assert not any(task.done() for task in waiting)
    assert client.stats.queue_depth == 2500
    assert len(transport.sent(ADD)) == 1
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


# -- queue_timeout -----------------------------------------------------------------------------


async def test_queue_timeout_fails_a_call_that_cannot_start_and_never_sends_it(
    spent: tuple[DocgenClient, FakeTransport], clock: FakeClock
) -> None:
    client, transport = spent
    bounded = client.with_options(queue_timeout=1)
    call = asyncio.create_task(bounded.call(ADD, {"name": "late"}))
    await turns()  # queued at clock 1000.0
    await clock.run_for(0.5)
    assert not call.done()
    await clock.run_for(0.6)
    assert call.done()
    error = call.exception()
    assert isinstance(error, RateLimitedError)
    assert error.retry_after is not None and error.retry_after > 0
    assert error.method == ADD
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is RateLimitedError and copy.retry_after == error.retry_after
    await clock.run_for(700.0)  # the budget frees: the expired call is still never sent
    assert transport.sent(ADD) == [{"name": "first"}]
    # The view shares the session: the client's own calls still wait without a bound.
    unbounded = asyncio.create_task(client.call(ADD, {"name": "patient"}))
    await turns()
    assert unbounded.done() and unbounded.result()["name"] == "patient"
    assert client.stats.budget_wait_s > 0
    assert client.stats.limiter_wait_s >= client.stats.budget_wait_s


async def test_queue_timeout_on_the_client_is_the_default_of_every_call(clock: FakeClock) -> None:
    transport = FakeTransport(costs={ADD: 1.0})
    async with make_client(transport, clock, operating_budget=TINY, queue_timeout=2.0) as client:
        await client.call(ADD, {"name": "first"})
        call = asyncio.create_task(client.call(ADD, {"name": "second"}))
        await turns()
        await clock.run_for(1.9)
        assert not call.done()
        await clock.run_for(0.2)
        with pytest.raises(RateLimitedError):
            await call
        # with_options(queue_timeout=None) lifts the bound for one view.
        patient = asyncio.create_task(
            client.with_options(queue_timeout=None).call(ADD, {"name": "third"})
        )
        await clock.run_for(30.0)
        assert not patient.done()
        await clock.run_for(600.0)
        assert (await patient)["name"] == "third"
    assert [p["name"] for p in transport.sent(ADD)] == ["first", "third"]


@pytest.mark.parametrize("value", [-1, "1", True])
def test_a_bad_queue_timeout_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="queue_timeout"):
        DocgenClient.from_webhook(WEBHOOK, queue_timeout=value)


async def test_with_options_timeout_bounds_the_whole_call(clock: FakeClock) -> None:
    transport = FakeTransport()
    # A linger longer than the timeout keeps the second call queued behind the first.
    async with make_client(transport, clock, linger=10.0) as client:
        transport.gate = asyncio.Event()
        started = asyncio.create_task(client.with_options(timeout=5).call(GET, {"id": 1}))
        await turns()
        queued = asyncio.create_task(client.with_options(timeout=5).call(GET, {"id": 9}))
        await turns()
        await clock.run_for(4.0)
        assert not started.done() and not queued.done()
        await clock.run_for(1.5)  # past the timeout: the lingering call is dropped unsent
        for call in (started, queued):
            with pytest.raises(TransportError, match="timeout=5"):
                await call
        transport.gate.set()
        await turns()  # the abandoned request ends (nothing in flight: no linger next)
        assert (await client.call(GET, {"id": 2}))["id"] == "2"
    assert [p["id"] for p in transport.sent(GET)] == ["1", "2"]  # "9" was never sent


# -- one send path: explicit batches book the budget like auto-batched calls -------------------


async def _ledger_after(explicit: bool) -> list[float]:
    clock = FakeClock()
    transport = FakeTransport(costs={DOC_ADD: [1.0, 1.5, 2.0, 2.5, 3.0]})
    budget = OperatingBudget(limit_s=480.0, window_s=600.0, buckets=10)
    async with make_client(transport, clock, operating_budget=budget) as client:
        params = [{"templateId": 5, "entityTypeId": 2, "entityId": i} for i in range(5)]
        if explicit:
            async with client.batch() as batch:
                calls = [batch.call(DOC_ADD, p) for p in params]
            assert all(c.result()["entityId"] == str(i) for i, c in enumerate(calls))
        else:
            await asyncio.gather(*(client.call(DOC_ADD, p) for p in params))
        assert [m for m, _ in transport.requests] == ["batch"]
        backend = client.session.limiter.backend
        assert isinstance(backend, MemoryBackend)
        ledger = backend._ledger(DOC_ADD)
        assert ledger is not None
        start = clock.now
        return [
            ledger.used(start + offset) for offset in (0, 595.0, 596.0, 597.5, 599.9, 600.1, 606.1)
        ]


async def test_an_explicit_batch_books_the_operating_budget_like_auto_batched_calls() -> None:
    explicit = await _ledger_after(explicit=True)
    auto = await _ledger_after(explicit=False)
    assert explicit == auto
    assert explicit[0] == pytest.approx(10.0)  # every command's result_time was booked
    # ... and expires with the window (the ledger may hold a booking one slot, 6 s, longer:
    # on the safe side)
    assert explicit[-1] == 0.0


async def test_an_explicit_batch_waits_for_its_budget(
    clock: FakeClock,
) -> None:
    transport = FakeTransport(costs={ADD: 1.0})
    async with make_client(transport, clock, operating_budget=TINY) as client:
        await client.call(ADD, {"name": "first"})
        sending = asyncio.create_task(_explicit(client, "second"))
        await clock.run_for(30.0)
        assert not sending.done()  # the budget is spent: the batch waits for it
        await clock.run_for(600.0)
        await asyncio.wait_for(sending, 1.0)
    assert [p["name"] for p in transport.sent(ADD)] == ["first", "second"]


async def _explicit(client: DocgenClient, name: str) -> None:
    async with client.batch() as batch:
        batch.call(ADD, {"name": name})


# -- stats -------------------------------------------------------------------------------------


async def test_batches_never_exceed_http_requests_when_requests_fail(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bitrix_docgen_async.session")
    transport = FakeTransport()
    transport.failures = [TransportError("dropped")] * 3
    async with make_client(
        transport, clock, retry=RetryPolicy(max_attempts=5, base_delay=0.01)
    ) as client:
        reads = asyncio.gather(*(client.call(GET, {"id": i}) for i in range(10)))
        for _ in range(10):
            await clock.run_for(1.0)
        assert len(await reads) == 10
    stats = client.stats
    assert stats.retries == 30 and stats.http_requests == 1 and stats.batches == 1
    assert len(transport.requests) == 4
    # Every decision is logged at DEBUG, naming the method, the error and the action.
    decisions = [
        r.getMessage() for r in caplog.records if "TransportError -> retry" in r.getMessage()
    ]
    assert len(decisions) == 30 and all(d.startswith(GET) for d in decisions)
    assert all("fakewebhookcode" not in r.getMessage() for r in caplog.records)


# -- observation 8: a caller cancelled before its request starts is never sent ----------------


@pytest.mark.parametrize("seed", range(5))
async def test_writes_cancelled_before_their_request_starts_are_never_sent(
    clock: FakeClock, seed: int
) -> None:
    rng = random.Random(seed)
    transport = FakeTransport()
    tasks: dict[str, asyncio.Task[Any]] = {}
    cancelled_unsent: set[str] = set()

    def received() -> set[str]:
        return {p["name"] for p in transport.sent(ADD)}

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0)
            await clock.run_for(0.001)

    async with make_client(transport, clock) as client:
        tick = asyncio.create_task(ticker())
        for i in range(600):
            name = f"w{i}"
            tasks[name] = asyncio.create_task(client.call(ADD, {"name": name}))
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)
            if rng.random() < 0.3:
                victim = rng.choice(list(tasks))
                if not tasks[victim].done():
                    if victim not in received():
                        cancelled_unsent.add(victim)
                    tasks[victim].cancel()
        outcomes = await asyncio.wait_for(
            asyncio.gather(*tasks.values(), return_exceptions=True), 10.0
        )
        tick.cancel()
        await asyncio.gather(tick, return_exceptions=True)
    assert cancelled_unsent, "the test cancelled nothing before it was sent"
    assert not cancelled_unsent & received()
    for name, outcome in zip(tasks, outcomes, strict=True):
        if not isinstance(outcome, asyncio.CancelledError):
            assert outcome["name"] == name
    assert client.stats.queue_depth == 0


# -- close -------------------------------------------------------------------------------------


async def test_close_fails_queued_calls_without_sending_them(
    spent: tuple[DocgenClient, FakeTransport],
) -> None:
    client, transport = spent
    waiting = [asyncio.create_task(client.call(ADD, {"name": f"n{i}"})) for i in range(100)]
    await turns()
    await asyncio.wait_for(client.__aexit__(None, None, None), 1.0)
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(o, ClientStateError) for o in outcomes)
    assert len(transport.sent(ADD)) == 1
    assert transport.closed == 1


async def test_a_view_shares_the_session_and_is_not_opened_itself(clock: FakeClock) -> None:
    transport = FakeTransport()
    client = make_client(transport, clock)
    view = client.with_options(queue_timeout=3, timeout=10)
    with pytest.raises(ClientStateError):
        await view.call(GET, {"id": 1})  # the client is not open yet
    async with client:
        with pytest.raises(ClientStateError):
            await view.__aenter__()
        assert view.session is client.session and view.stats is client.stats
        results = await asyncio.gather(view.call(GET, {"id": 1}), client.call(GET, {"id": 2}))
        assert [r["id"] for r in results] == ["1", "2"]
    assert [m for m, _ in transport.requests] == ["batch"]  # one batch for both
    with pytest.raises(ClientStateError):
        await view.call(GET, {"id": 3})


async def test_wait_to_retry_decides_logs_and_waits_on_the_injected_clock(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bitrix_docgen_async.session")
    limiter = Limiter.in_memory(None, None, clock=clock, sleep=clock.sleep)
    policy = RetryPolicy(max_attempts=2, base_delay=1.0, max_delay=1.0)
    dropped = TransportError("ServerDisconnected")

    async def attempt(number: int, *, idempotent: bool = True) -> bool:
        return await wait_to_retry(
            dropped,
            what="download of document 7",
            idempotent=idempotent,
            attempt=number,
            started=clock.now,
            policy=policy,
            limiter=limiter,
        )

    waiting = asyncio.create_task(attempt(0))
    await turns()
    assert not waiting.done()  # it waits the decided delay on the injected clock
    await clock.run_for(1.0)
    assert waiting.result() is True
    assert await attempt(2) is False  # attempts spent
    assert await attempt(0, idempotent=False) is False  # a write is not sent twice
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("download of document 7: TransportError -> retry")
    assert "fail" in messages[1] and "outcome unknown" in messages[2]
