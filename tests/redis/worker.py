"""One worker process of the shared-limiter tests (run by them, not collected by pytest).

``python tests/redis/worker.py '<json config>'`` opens a client on the webhook, prints
``ready``, waits for a line on stdin, makes its calls concurrently and prints one JSON line:
how many succeeded, the first errors, its wall time and its client's counters.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

from bitrix_docgen_async import DocgenClient, Limiter, OperatingBudget, RateLimit, RetryPolicy


async def main(config: dict[str, Any]) -> None:
    rate = RateLimit(*config["rate"])
    budget = OperatingBudget(*config["budget"]) if config.get("budget") else None
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
                    max_ahead=config.get("max_ahead"),
                    reconnect_timeout=config.get("reconnect_timeout", 30.0),
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
        await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(go), sys.stdin
        )
        await asyncio.wait_for(go.readline(), 60)
        ids = config["ids"]
        started = time.perf_counter()
        results = await asyncio.wait_for(
            asyncio.gather(
                *(
                    client.call(config["method"], {"id": ids[k % len(ids)]})
                    for k in range(config["calls"])
                ),
                return_exceptions=True,
            ),
            config.get("timeout", 120),
        )
        wall = time.perf_counter() - started
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        stats = client.stats
        report = {
            "ok": len(results) - len(errors),
            "errors": errors[:5],
            "error_count": len(errors),
            "wall": wall,
            "http_requests": stats.http_requests,
            "rate_limited": stats.rate_limited,
            "retries": stats.retries,
        }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
