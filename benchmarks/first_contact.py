"""First contact with an unmeasured write: N concurrent ``numerator.add`` against its bound.

    python benchmarks/first_contact.py [--calls 1000] [--burst 10] [--per-second 20] [--runs 3]

The portal runs in its own process with a request bucket (``--burst``, ``--per-second``) and
``numerator.add`` costing 0.01 s (``method_costs``); the client paces with the same bucket and
has never seen the method run. Two bounds: the bucket's, the fewest requests the work needs
(50 commands per batch) take at least ``(requests - burst) / per_second`` seconds; and that plus
the execution of the last request's batch (the portal runs a batch's commands one after another,
so a full batch takes 50 x 0.01 s). Printed: wall time against each, median of ``--runs`` runs
(a fresh portal and client each).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from common import PortalProcess, machine, table

from bitrix_docgen_async import DocgenClient, RateLimit

ADD = "crm.documentgenerator.numerator.add"
COST = 0.01


async def once(calls: int, burst: int, per_second: float) -> tuple[float, int]:
    config = {
        "rate_limit": {"burst": burst, "per_second": per_second},
        "method_costs": {ADD: COST},
    }
    async with PortalProcess(**config) as portal:
        limit = RateLimit(burst=burst, per_second=per_second)
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=limit) as client:
            started = time.perf_counter()
            await asyncio.gather(
                *(client.numerators.add(f"N{i}", "{NUMBER}") for i in range(calls))
            )
            wall = time.perf_counter() - started
        stats = await portal.stats()
    return wall, int(stats["requests"])


async def main(args: argparse.Namespace) -> None:
    walls, requests = [], []
    for _ in range(args.runs):
        wall, sent = await once(args.calls, args.burst, args.per_second)
        walls.append(wall)
        requests.append(sent)
    needed = -(-args.calls // 50)
    bound = max(0, needed - args.burst) / args.per_second
    executed = bound + min(args.calls, 50) * COST
    wall = statistics.median(walls)
    print(f"machine: {machine()}; median of {args.runs} runs")
    print(
        table(
            [
                "calls",
                "requests",
                "wall s",
                "request bound s",
                "wall / request bound",
                "+ last batch's execution s",
                "wall / that",
            ],
            [
                [
                    args.calls,
                    max(requests),
                    f"{wall:.2f}",
                    f"{bound:.2f}",
                    f"{wall / bound:.2f}",
                    f"{executed:.2f}",
                    f"{wall / executed:.2f}",
                ]
            ],
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--per-second", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
