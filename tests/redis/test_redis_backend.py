"""The Redis backend's arithmetic against a real server: slots, budgets, keys, lost state."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable

import pytest

from bitrix_docgen_async import OperatingBudget, RateLimit, WebhookAuth
from bitrix_docgen_async.limiter import MemoryBackend
from tests.redis.needs import need_module
from tests.redis.redis_server import RedisServer

need_module("redis.asyncio", "redis-py is not installed (the [redis] extra)")

from redis.asyncio import Redis  # noqa: E402 - after need_module

from bitrix_docgen_async.redis_limiter import (  # noqa: E402 - after need_module
    RedisBackend,
    RedisLimiter,
    key_prefixes,
)

WEBHOOK = "http://127.0.0.1:8080/rest/1/s3cr3tc0de/"
RATE = RateLimit(burst=5, per_second=10.0)  # capacity 4 after the margin of 1
BUDGET = OperatingBudget(limit_s=2.0, window_s=60.0)

Factory = Callable[..., RedisLimiter]


@pytest.fixture
async def limiters(redis_server: RedisServer) -> AsyncIterator[Factory]:
    """Builds limiters on the test's server (as separate processes would) and closes them."""
    made: list[RedisLimiter] = []

    def make(**options: object) -> RedisLimiter:
        options = {"key": WEBHOOK, "rate_limit": RATE, "operating_budget": BUDGET, **options}
        limiter = RedisLimiter(redis_server.url, **options)  # type: ignore[arg-type]
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.aclose()


async def as_if_up_for_long(backend: RedisBackend) -> None:
    """Store a full bucket, as a server up for long would have it (the test's is brand new)."""
    seconds, micros = await backend.redis.time()
    await backend.redis.hset(
        f"{backend.bucket_prefix}:bucket",
        mapping={"tokens": backend.capacity, "updated": seconds + micros / 1e6},
    )


async def probe_done(backend: RedisBackend, method: str) -> None:
    """Settle one probe with the portal's ``operating``, as the first reply of a method does."""
    assert await backend.try_reserve(method, 0.0)
    await backend.settle(method, 0.0, 0.0, 0.0, None)


async def both_ledgers(limiters: Factory) -> tuple[RedisBackend, MemoryBackend]:
    """A shared backend past its first probe of ``m`` and an in-memory one: the same steps
    must give the same answers on both."""
    shared = limiters().shared
    await shared.check()
    await probe_done(shared, "m")
    return shared, MemoryBackend(RATE, BUDGET)


async def test_takes_from_several_processes_get_consecutive_slots(limiters: Factory) -> None:
    slow = RateLimit(burst=5, per_second=1.0)
    first, second = limiters(rate_limit=slow).shared, limiters(rate_limit=slow).shared
    await first.check()
    await second.check()
    await as_if_up_for_long(first)
    waits = [await (first if n % 2 else second).take_request() for n in range(8)]
    # 4 tokens at once, then one slot a second, in the order the takes reached Redis.
    assert waits[:4] == [0.0] * 4
    assert all(n - 0.5 < wait <= n for n, wait in enumerate(waits[4:], start=1)), waits
    assert all(a < b for a, b in itertools.pairwise(waits[3:])), waits


async def test_refund_gives_a_slot_back_and_drain_empties_the_bucket(limiters: Factory) -> None:
    backend = limiters().shared
    await backend.check()
    await as_if_up_for_long(backend)
    for _ in range(4):
        assert await backend.take_request() == 0.0
    assert await backend.take_request() > 0.0
    await backend.refund_request()
    await backend.refund_request()
    assert await backend.take_request() == 0.0
    await backend.drain_requests()
    assert 0.05 < await backend.take_request() <= 0.1


async def test_no_slot_is_handed_out_further_ahead_than_max_ahead(limiters: Factory) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(seconds)

    # One slot per second, none further than 2.5 s ahead: after the 4 tokens of the bucket,
    # slots at 1 s and 2 s; the next would be at 3 s, so that take waits and asks again.
    slow = RateLimit(burst=5, per_second=1.0)
    backend = limiters(rate_limit=slow, max_ahead=2.5, sleep=sleep).shared
    await backend.check()
    await as_if_up_for_long(backend)
    waits = [await backend.take_request() for _ in range(7)]
    assert max(waits) <= 2.5
    assert slept and 0 < sum(slept) <= 0.5 + 1e-6


async def test_a_restarted_server_admits_nothing_for_max_ahead(
    limiters: Factory, redis_server: RedisServer
) -> None:
    # Slots handed out before the restart may still be in use, and the portal's bucket may be
    # full: the rebuilt bucket's first slot is max_ahead after the server came up.
    backend = limiters(max_ahead=0.5).shared
    await backend.check()
    await as_if_up_for_long(backend)
    assert await backend.take_request() == 0.0
    await redis_server.restart()
    wait = await backend.take_request()
    slot_after_start = time.monotonic() + wait - redis_server.started_at
    assert slot_after_start >= 0.5 - 0.1  # less only the server's own start-up time
    assert backend.restart_guard == pytest.approx(0.5 + 4 / 10.0)


async def test_a_server_restarted_just_before_a_second_ticks_is_not_taken_for_a_second_old(
    limiters: Factory, redis_server: RedisServer
) -> None:
    # Redis counts uptime_in_seconds in whole wall-clock seconds: started at x.9 s, it reads 1 at
    # (x+1).0 s. Read as it is, the rebuilt bucket would be full a few milliseconds after start.
    backend = limiters(max_ahead=0.5).shared
    await backend.check()
    await as_if_up_for_long(backend)
    await asyncio.sleep((0.9 - time.time() % 1.0) % 1.0)  # to x.9 s of the wall clock
    await redis_server.restart()
    probe = Redis.from_url(redis_server.url)
    try:
        for _ in range(200):  # within 2 s, the first reading of 1
            if (await probe.info("server"))["uptime_in_seconds"] >= 1:
                break
            await asyncio.sleep(0.01)
    finally:
        await probe.aclose()
    wait = await backend.take_request()
    slot_after_start = time.monotonic() + wait - redis_server.started_at
    assert slot_after_start >= 0.5 - 0.1


async def test_only_hashes_reach_redis_and_the_bucket_is_per_portal(limiters: Factory) -> None:
    same_portal_other_hook = "http://127.0.0.1:8080/rest/7/0therc0de"
    one, other = limiters().shared, limiters(key=same_portal_other_hook).shared
    for backend in (one, other):
        await backend.check()
        await backend.take_request()
        await probe_done(backend, "crm.documentgenerator.document.add")
    assert one.bucket_prefix == other.bucket_prefix  # the portal counts requests per portal
    assert one.budget_prefix != other.budget_prefix  # ... and execution time per webhook
    assert key_prefixes(WebhookAuth(WEBHOOK)) == key_prefixes(WEBHOOK.rstrip("/"))
    assert key_prefixes(WEBHOOK)[0] != key_prefixes("http://127.0.0.1:8081/rest/1/x")[0]
    dump = ""
    for key in await one.redis.keys("*"):
        dump += repr(key) + repr(await one.redis.dump(key))
    assert dump
    for secret in ("s3cr3tc0de", "0therc0de", "127.0.0.1:8080"):
        assert secret not in dump
    assert "s3cr3tc0de" not in repr(limiters())


async def test_the_ledger_books_like_the_in_memory_one(limiters: Factory) -> None:
    for backend in await both_ledgers(limiters):
        assert await backend.try_reserve("m", 1.5)
        assert not await backend.try_reserve("m", 1.0)  # 1.5 + 1.0 > 2.0 x 0.98
        await backend.release("m", 1.5)
        assert await backend.try_reserve("m", 1.0)
        await backend.settle("m", 1.0, 0.5, None, None)
        assert await backend.try_reserve("m", 1.4)
        assert not await backend.try_reserve("m", 0.2)
        await backend.release("m", 1.4)
        # The portal says 1.8 s were spent (another client shares the webhook): booked too.
        await backend.settle("m", 0.0, 0.0, 1.8, 30.0)
        assert not await backend.try_reserve("m", 0.3)
        assert await backend.try_reserve("m", 0.1)
        await backend.release("m", 0.1)
        hint = await backend.wait_hint("m")
        # the in-memory ledger holds a booking to the end of its slot (a tenth of a bucket)
        slot = BUDGET.window_s / BUDGET.buckets / 10
        assert hint is not None and 29.0 < hint <= 30.0 + slot
        await backend.suspend("m", 5.0)
        assert not await backend.try_reserve("m", 0.01)
        hint = await backend.wait_hint("m")
        assert hint is not None and 4.0 < hint <= 5.0
        assert await backend.try_reserve("other", 3.0)  # costlier than the budget, but idle


async def test_a_settle_with_nothing_reserved_keeps_another_call_s_hold(limiters: Factory) -> None:
    # A batch reply's outer figure is settled with nothing reserved: a batch still running
    # must keep its hold (the shared ledger used to drop any one of this process's).
    for backend in await both_ledgers(limiters):
        assert await backend.try_reserve("m", 1.5)
        await backend.settle("m", 0.0, 0.0, None, None)
        await backend.release("m", 0.0)
        assert not await backend.try_reserve("m", 1.0)  # 1.5 still in flight
        await backend.release("m", 1.5)
        assert await backend.try_reserve("m", 1.0)
        await backend.release("m", 1.0)


async def test_another_spender_is_seen_while_our_calls_are_in_flight(limiters: Factory) -> None:
    # The portal adds a call's time when it ends: a reply's figure holds our settled calls and
    # other processes' spend, never our calls still running (those count by their holds).
    for backend in await both_ledgers(limiters):
        assert await backend.try_reserve("m", 0.6)
        assert await backend.try_reserve("m", 0.6)
        # One comes back after 0.5 s; the portal says 1.0: 0.5 of it is someone else's.
        await backend.settle("m", 0.6, 0.5, 1.0, 30.0)
        assert await backend.try_reserve("m", 0.35)  # 0.5 + 0.5 + 0.6 + 0.35 <= 1.96
        assert not await backend.try_reserve("m", 0.1)
        await backend.release("m", 0.35)
        await backend.release("m", 0.6)


async def test_workers_share_a_suspension(limiters: Factory) -> None:
    one, two = limiters().shared, limiters().shared
    await one.check()
    await two.check()
    await probe_done(one, "m")
    await one.suspend("m", 2.0)
    assert not await two.try_reserve("m", 0.01)


async def test_a_server_that_may_have_lost_the_ledger_lets_one_command_probe(
    limiters: Factory,
) -> None:
    backend = limiters().shared
    await backend.check()
    assert await backend.try_reserve("m", 0.1)
    assert not await backend.try_reserve("m", 0.1)  # one at a time until the portal's view
    await backend.settle("m", 0.1, 0.1, 0.3, None)
    assert await backend.try_reserve("m", 0.1)
    assert await backend.try_reserve("m", 0.1)


async def test_a_crashed_worker_s_reservation_expires(limiters: Factory) -> None:
    crashed, alive = limiters(reservation_ttl=0.3).shared, limiters().shared
    await crashed.check()
    await alive.check()
    await probe_done(alive, "m")
    assert await crashed.try_reserve("m", 1.9)  # ... and the process dies without settling
    assert not await alive.try_reserve("m", 1.0)
    await asyncio.sleep(0.4)
    assert await alive.try_reserve("m", 1.0)


async def test_without_limits_redis_is_not_asked(limiters: Factory) -> None:
    redis = limiters().shared.redis
    backend = RedisBackend(redis, key=WEBHOOK, rate_limit=None, budget=None)
    assert await backend.take_request() == 0.0
    assert await backend.try_reserve("m", 1e9)
    assert await backend.wait_hint("m") is None
