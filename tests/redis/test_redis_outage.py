"""Redis missing at start, lost mid-run, and back: clear errors, bounded waits, no fallback."""

from __future__ import annotations

import asyncio
import time

import pytest

from bitrix_docgen_async import BitrixError, DocgenClient, OperatingBudget, RateLimit
from bitrix_docgen_async.testing import FakePortal
from tests.redis.needs import need_module
from tests.redis.redis_server import RedisServer

need_module("redis.asyncio", "redis-py is not installed (the [redis] extra)")

from bitrix_docgen_async.redis_limiter import (  # noqa: E402 - after need_module
    LimiterUnavailableError,
    RedisLimiter,
)

WEBHOOK = "http://127.0.0.1:8080/rest/1/s3cr3tc0de/"
RATE = RateLimit(burst=5, per_second=50.0)
BUDGET = OperatingBudget(limit_s=2.0, window_s=60.0)
NOWHERE = "redis://user:hunter2@127.0.0.1:1/0"  # nothing listens on port 1


async def test_a_missing_redis_is_a_clear_error_at_start() -> None:
    limiter = RedisLimiter(NOWHERE, key=WEBHOOK, connect_timeout=2.0)
    started = time.monotonic()
    with pytest.raises(LimiterUnavailableError) as caught:
        await limiter.check()
    # ... on first use too, at once: nothing is ever paced by an unshared bucket instead.
    with pytest.raises(LimiterUnavailableError):
        await limiter.acquire()
    assert time.monotonic() - started < 5.0
    message = str(caught.value)
    assert "redis://127.0.0.1:1/0" in message and "unavailable" in message
    assert "hunter2" not in message and "s3cr3tc0de" not in message
    assert "hunter2" not in repr(limiter) and "s3cr3tc0de" not in repr(limiter)
    assert isinstance(caught.value, BitrixError)
    await limiter.aclose()
    with pytest.raises(LimiterUnavailableError):
        async with RedisLimiter(NOWHERE, key=WEBHOOK, connect_timeout=2.0):
            pass


async def test_calls_wait_for_a_lost_redis_within_the_bound_then_fail(
    redis_server: RedisServer,
) -> None:
    async with RedisLimiter(
        redis_server.url, key=WEBHOOK, rate_limit=RATE, reconnect_timeout=0.5
    ) as limiter:
        await limiter.acquire()
        await redis_server.stop()
        started = time.monotonic()
        with pytest.raises(LimiterUnavailableError, match=r"unreachable for over 0\.5 s"):
            await limiter.acquire()
        assert 0.45 <= time.monotonic() - started < 3.0
        await redis_server.start()
        await limiter.acquire()  # it tries again on the next call, and Redis is back
        assert limiter.shared.outages == 1


async def test_calls_resume_when_redis_comes_back_within_the_bound(
    redis_server: RedisServer,
) -> None:
    async with RedisLimiter(
        redis_server.url, key=WEBHOOK, rate_limit=RATE, operating_budget=BUDGET
    ) as limiter:
        backend = limiter.shared
        await limiter.acquire()
        assert await backend.try_reserve("m", 0.5)
        await redis_server.stop()
        waiting = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0.3)
        assert not waiting.done()
        # Meanwhile nothing is admitted, and a booking is kept for later rather than lost.
        assert not await backend.try_reserve("m", 0.1)
        await backend.settle("m", 0.5, 0.7, 0.7, None)
        await redis_server.start()
        await asyncio.wait_for(waiting, 10.0)
        assert backend.outages == 1
        booked = await backend.redis.hget(f"{backend.budget_prefix}:op:m:state", "booked")
        assert booked is not None and float(booked) == pytest.approx(0.7)


async def test_a_call_fails_with_the_limiter_error_when_redis_stays_away() -> None:
    async with FakePortal() as portal:
        limiter = RedisLimiter(NOWHERE, key=portal.webhook_url, connect_timeout=2.0)
        try:
            async with DocgenClient.from_webhook(portal.webhook_url, limiter=limiter) as client:
                with pytest.raises(LimiterUnavailableError):
                    await asyncio.wait_for(client.call("crm.documentgenerator.numerator.list"), 2.0)
        finally:
            await limiter.aclose()
