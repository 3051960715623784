"""Worker processes sharing one portal's limits: in-memory limiters vs the Redis limiter.

    python benchmarks/workers.py                 # 4 workers x 1,500 calls, bucket 50 / 20 per s
    python benchmarks/workers.py --workers 8 --calls 3000 --budget-calls 40

Needs ``redis-server`` on the PATH and the ``redis`` extra. A FakePortal runs in this process;
each worker is this script in another process (``--worker``), given the webhook URL. All workers
are released together once each has opened its client; the wall time runs from then to the
last worker's end. Three runs against the request bucket (``numerator.get`` of seeded
numerators; 1,500 calls are 30 batch requests per worker):

* every worker with its own in-memory limiter (each believes it has the whole bucket);
* every worker with a ``RedisLimiter`` on one key;
* the same, with Redis restarted (its data lost) one second into the run.

The bound: the portal admits ``burst`` requests at once and ``per_second`` after that, so N
accepted requests take at least (N - burst) / per_second seconds; "vs limit" is bound / wall.

Then two runs against the operating budget (an expensive ``numerator.get``, 0.05 s, and 2 s of
execution per 4 s window), whose bound is (execution - limit) / (limit / window).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from common import machine, table

from bitrix_docgen_async import DocgenClient, Limiter, OperatingBudget, RateLimit, RetryPolicy
from bitrix_docgen_async.testing import FakePortal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.redis.redis_server
from tests.redis.redis_server import RedisServer

GET = "crm.documentgenerator.numerator.get"
ROOT = Path(__file__).resolve().parents[1]


# -- a worker process ------------------------------------------------------------------------


async def worker(config: dict[str, Any]) -> None:
    """Open a client, say ``ready``, wait for ``go`` on stdin, make the calls, print a report."""
    rate = RateLimit(*config["rate"])
    budget = OperatingBudget(*config["budget"]) if config["budget"] else None
    async with AsyncExitStack() as stack:
        limiter: Limiter
        if config["limiter"] == "redis":
            from bitrix_docgen_async.redis import RedisLimiter

            limiter = await stack.enter_async_context(
                RedisLimiter(
                    config["redis_url"],
                    key=config["webhook"],
                    rate_limit=rate,
                    operating_budget=budget,
                )
            )
        else:
            limiter = Limiter.in_memory(rate, budget)
        client = await stack.enter_async_context(
            DocgenClient.from_webhook(
                config["webhook"],
                limiter=limiter,
                retry=RetryPolicy(base_delay=0.01, max_delay=0.2, max_attempts=10),
            )
        )
        print("ready", flush=True)
        go = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(go), sys.stdin)
        await asyncio.wait_for(go.readline(), 120)
        ids = config["ids"]
        results = await asyncio.wait_for(
            asyncio.gather(
                *(client.call(GET, {"id": ids[k % len(ids)]}) for k in range(config["calls"])),
                return_exceptions=True,
            ),
            600,
        )
        errors = sum(isinstance(r, BaseException) for r in results)
    print(json.dumps({"ok": len(results) - errors, "errors": errors}), flush=True)


# -- the parent --------------------------------------------------------------------------------


async def run(
    configs: list[dict[str, Any]], during: Callable[[], Awaitable[None]] | None = None
) -> tuple[list[dict[str, Any]], float]:
    """Start the workers, release them together; their reports and the wall time."""
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--worker",
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        for config in configs
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            ready = await asyncio.wait_for(proc.stdout.readline(), 60)
            if ready.strip() != b"ready":
                raise RuntimeError(f"a worker did not start: {ready!r}")
        started = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        if during is not None:
            await during()
        reports = []
        for proc in procs:
            assert proc.stdout is not None
            reports.append(json.loads(await asyncio.wait_for(proc.stdout.readline(), 600)))
        wall = time.perf_counter() - started
        for proc in procs:
            await asyncio.wait_for(proc.wait(), 30)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    return reports, wall


def fleet(
    args: argparse.Namespace, portal: FakePortal, limiter: str, redis: RedisServer, **extra: Any
) -> list[dict[str, Any]]:
    ids = [portal.seed_numerator(f"N{i}") for i in range(20)]
    config = {
        "webhook": portal.webhook_url,
        "limiter": limiter,
        "redis_url": redis.url,
        "ids": ids,
        "calls": args.calls,
        "rate": [args.burst, args.rate],
        "budget": None,
        **extra,
    }
    return [dict(config) for _ in range(args.workers)]


async def wait_for_guard(redis: RedisServer, rate: RateLimit) -> None:
    """A bucket on a Redis younger than this is rebuilt as after a restart (slowly)."""
    guard = rate.burst / rate.per_second + (rate.burst - 1) / rate.per_second
    await asyncio.sleep(max(0.0, redis.started_at + guard - time.monotonic()))


async def main(args: argparse.Namespace) -> None:
    rate = RateLimit(burst=args.burst, per_second=args.rate)
    budget = OperatingBudget(limit_s=args.limit, window_s=args.window)
    print(f"{machine()}; {args.workers} workers; bucket {rate.burst} / {rate.per_second} per s\n")
    rows = []
    async with RedisServer() as redis:
        for label in ("in-memory (one per worker)", "Redis", "Redis, restarted at 1 s"):
            during = None
            if label.startswith("Redis"):
                await wait_for_guard(redis, rate)
            if "restarted" in label:

                async def restart(server: RedisServer = redis) -> None:
                    await asyncio.sleep(1.0)
                    await server.restart(down_for=0.5)

                during = restart
            kind = "memory" if label.startswith("in-memory") else "redis"
            async with FakePortal(rate_limit=rate) as portal:
                reports, wall = await run(fleet(args, portal, kind, redis), during)
                refused = portal.stats.rejected_rate_limit
                accepted = portal.stats.requests - refused
            bound = max(0.0, (accepted - rate.burst) / rate.per_second)
            ok = sum(r["ok"] for r in reports)
            rows.append(
                [
                    label,
                    portal.stats.requests,
                    refused,
                    f"{ok}/{args.workers * args.calls}",
                    f"{wall:.2f}",
                    f"{bound:.2f}",
                    f"{accepted / wall:.1f} ({bound / wall:.0%})",
                ]
            )
        heads = ["limiter", "requests", "503s", "calls ok", "wall s", "bound s", "req/s (vs limit)"]
        print(table(heads, rows))

        print(
            f"\noperating budget {budget.limit_s:g} s per {budget.window_s:g} s, "
            f"numerator.get costs {args.cost:g} s, {args.budget_calls} calls per worker\n"
        )
        rows = []
        for label, kind in (("in-memory (one per worker)", "memory"), ("Redis", "redis")):
            async with FakePortal(
                rate_limit=rate, operating_budget=budget, method_costs={GET: args.cost}
            ) as portal:
                configs = fleet(
                    args,
                    portal,
                    kind,
                    redis,
                    calls=args.budget_calls,
                    budget=[budget.limit_s, budget.window_s],
                )
                reports, wall = await run(configs)
                commands = portal.stats.commands
                refused = portal.stats.rejected_operating
            execution = commands * args.cost
            bound = max(0.0, (execution - budget.limit_s) / (budget.limit_s / budget.window_s))
            ok = sum(r["ok"] for r in reports)
            rows.append(
                [
                    label,
                    commands,
                    refused,
                    f"{ok}/{args.workers * args.budget_calls}",
                    f"{wall:.2f}",
                    f"{bound:.2f}",
                    f"{execution / wall:.2f} ({bound / wall:.0%})",
                ]
            )
        heads = ["limiter", "commands run", "429s", "calls ok", "wall s", "bound s"]
        print(table([*heads, "execution s/s (vs budget)"], rows))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--calls", type=int, default=1500, help="calls per worker")
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--limit", type=float, default=2.0, help="budget seconds per window")
    parser.add_argument("--window", type=float, default=4.0, help="budget window, seconds")
    parser.add_argument("--cost", type=float, default=0.05, help="seconds per budget call")
    parser.add_argument("--budget-calls", type=int, default=25, help="budget calls per worker")
    return parser.parse_args()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        asyncio.run(worker(json.loads(sys.argv[2])))
    else:
        asyncio.run(main(parse()))
