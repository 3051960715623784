"""Request-bucket pacing: N concurrent reads against a portal with a small bucket.

The portal runs in its own process (``portal_server.py``) with the bucket given; the client
paces with the same figures. Printed: HTTP requests, 503 refusals, and the wall time against the
lower bound the bucket allows for that many requests: the first ``burst`` requests go at once,
every further one waits ``1 / per_second``.

    python benchmarks/pacing.py --calls 3000 --burst 10 --per-second 20
"""

from __future__ import annotations

import argparse
import asyncio
import time

from common import PortalProcess, machine, table

from bitrix_docgen_async import DocgenClient, RateLimit

GET = "crm.documentgenerator.template.get"


async def run(calls: int, burst: int, per_second: float) -> list[object]:
    limit = RateLimit(burst=burst, per_second=per_second)
    config = {"rate_limit": {"burst": burst, "per_second": per_second}}
    async with PortalProcess(**config) as portal:
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=limit) as client:
            started = time.perf_counter()
            await asyncio.gather(
                *(client.call(GET, {"id": portal.template_id}) for _ in range(calls))
            )
            wall = time.perf_counter() - started
        stats = await portal.stats()
    requests = int(stats["requests"])
    # The fewest requests the workload needs (50 commands per batch), not the ones sent.
    needed = -(-calls // 50)
    bound = max(0, needed - burst) / per_second
    ratio = f"{wall / bound:.3f}" if bound else "n/a"
    return [calls, requests, stats["rejected_rate_limit"], f"{wall:.2f}", f"{bound:.2f}", ratio]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--per-second", type=float, default=20.0)
    args = parser.parse_args()
    row = asyncio.run(run(args.calls, args.burst, args.per_second))
    print(machine())
    print(table(["calls", "requests", "503", "wall s", "bound s", "wall / bound"], [row]))


if __name__ == "__main__":
    main()
