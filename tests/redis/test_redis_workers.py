"""Worker processes sharing one portal's limits through Redis (the issue's acceptance runs).

Each run starts 4 worker processes (``worker.py``) against one FakePortal in this process, lets
them start together, and reads the portal's own counters of refused requests.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bitrix_docgen_async import OperatingBudget, RateLimit
from bitrix_docgen_async.testing import FakePortal
from tests.redis.needs import need_module
from tests.redis.redis_server import RedisServer

need_module("redis.asyncio", "redis-py is not installed (the [redis] extra)")

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("worker.py")
ROOT = Path(__file__).resolve().parents[2]
GET = "crm.documentgenerator.numerator.get"
RATE = RateLimit(burst=50, per_second=20.0)


async def run_workers(
    configs: list[dict[str, Any]],
    logs: Path,
    during: Callable[[], Awaitable[None]] | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """Start the workers, release them together, return their reports and the run's wall time."""
    procs = []
    for n, config in enumerate(configs):
        with (logs / f"worker{n}.log").open("wb") as err:
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(WORKER),
                    json.dumps(config),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=err,
                    cwd=ROOT,
                )
            )
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line.strip() == b"ready", line + _stderr(logs)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        if during is not None:
            await during()
        reports = []
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            assert line, _stderr(logs)
            reports.append(json.loads(line))
        wall = loop.time() - started
        for proc in procs:
            assert await asyncio.wait_for(proc.wait(), 30) == 0, _stderr(logs)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    return reports, wall


def _stderr(logs: Path) -> bytes:
    return b"\n".join(p.read_bytes()[-2000:] for p in sorted(logs.glob("worker*.log")))


def configs(
    portal: FakePortal, ids: list[int], limiter: str, redis_url: str = "", **extra: Any
) -> list[dict[str, Any]]:
    base = {
        "webhook": portal.webhook_url,
        "limiter": limiter,
        "redis_url": redis_url,
        "method": GET,
        "ids": ids,
        "calls": 1500,
        "rate": [RATE.burst, RATE.per_second],
        "budget": None,
        **extra,
    }
    return [dict(base) for _ in range(4)]


def summary(
    label: str,
    portal: FakePortal,
    reports: list[dict[str, Any]],
    wall: float,
    bound: float | None = None,
) -> str:
    requests = portal.stats.requests
    if bound is None:  # the request bucket's: accepted requests past the burst, at the rate
        accepted = requests - portal.stats.rejected_rate_limit
        bound = max(0.0, (accepted - RATE.burst) / RATE.per_second)
    return (
        f"\n{label}: {sum(r['ok'] for r in reports)} calls ok, "
        f"{sum(r['error_count'] for r in reports)} errors, {requests} requests, "
        f"503s {portal.stats.rejected_rate_limit}, 429s {portal.stats.rejected_operating}, "
        f"wall {wall:.2f} s vs bound {bound:.2f} s"
    )


async def test_four_workers_share_one_bucket_through_redis_and_not_without(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    # The same run twice: 4 processes x 1,500 calls (30 batches each), one portal bucket.
    async with FakePortal(rate_limit=RATE) as portal:
        ids = [portal.seed_numerator(f"N{i}") for i in range(20)]
        reports, wall = await run_workers(configs(portal, ids, "memory"), tmp_path)
        print(summary("in-memory limiters", portal, reports, wall))
        # Each process paces itself alone: together they overrun the portal's bucket.
        assert portal.stats.rejected_rate_limit > 0

    async with FakePortal(rate_limit=RATE) as portal:
        ids = [portal.seed_numerator(f"N{i}") for i in range(20)]
        shared = configs(portal, ids, "redis", redis_server.url, max_ahead=1.0)
        reports, wall = await run_workers(shared, tmp_path)
        print(summary("Redis limiter", portal, reports, wall))
        assert all(r["ok"] == 1500 for r in reports), reports
        assert portal.stats.rejected_rate_limit == 0
        assert portal.stats.requests == 120


async def test_four_workers_share_one_operating_budget(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    # Scaled: 2 s of execution per 4 s window; each call runs 0.05 s; 4 x 15 calls = 3 s.
    budget = OperatingBudget(limit_s=2.0, window_s=4.0)
    async with FakePortal(
        rate_limit=RATE, operating_budget=budget, method_costs={GET: 0.05}
    ) as portal:
        ids = [portal.seed_numerator(f"N{i}") for i in range(5)]
        shared = configs(
            portal,
            ids,
            "redis",
            redis_server.url,
            calls=15,
            budget=[budget.limit_s, budget.window_s],
        )
        reports, wall = await run_workers(shared, tmp_path)
        execution = portal.stats.commands * 0.05
        bound = (execution - budget.limit_s) / (budget.limit_s / budget.window_s)
        print(summary("Redis limiter, shared budget", portal, reports, wall, bound))
        assert all(r["ok"] == 15 for r in reports), reports
        assert portal.stats.commands == 60
        assert portal.stats.rejected_operating == 0


async def test_workers_ride_out_a_redis_restart(redis_server: RedisServer, tmp_path: Path) -> None:
    async def restart() -> None:
        await asyncio.sleep(1.0)
        await redis_server.restart(down_for=0.5)

    async with FakePortal(rate_limit=RATE) as portal:
        ids = [portal.seed_numerator(f"N{i}") for i in range(20)]
        shared = configs(portal, ids, "redis", redis_server.url, max_ahead=1.0)
        reports, wall = await run_workers(shared, tmp_path, during=restart)
        print(summary("Redis restarted mid-run", portal, reports, wall))
        assert all(r["ok"] == 1500 and r["error_count"] == 0 for r in reports), reports
        assert portal.stats.rejected_rate_limit == 0
        assert portal.stats.requests == 120
        assert b"is back after" in _stderr(tmp_path)  # the workers did see the outage
