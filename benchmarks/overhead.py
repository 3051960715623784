"""Client CPU per command (encode, send, parse, structure); limits off, portal in its own process.

python benchmarks/overhead.py [--commands 5000]      # the peer row needs '.[bench]'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from typing import Any

from common import PortalProcess, machine, table

GET = "crm.documentgenerator.numerator.get"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def ours(webhook: str, ids: list[int]) -> int:
    from bitrix_docgen_async import DocgenClient

    async with DocgenClient.from_webhook(webhook, rate_limit=None, operating_budget=None) as c:
        found = await asyncio.gather(*(c.numerators.get(i) for i in ids))
    return len(found)


async def peer(webhook: str, ids: list[int]) -> int:
    from fast_bitrix24 import BitrixAsync

    bitrix = BitrixAsync(webhook, verbose=False, respect_velocity_policy=False, ssl=False)
    found = await bitrix.get_by_ID(GET, ids, ID_field_name="id")
    return len(found)


def child(name: str, webhook: str, count: int) -> None:
    ids = [(k % 50) + 1 for k in range(count)]
    run = ours if name == "ours" else peer
    started, cpu = time.perf_counter(), cpu_seconds()
    try:
        done, error = asyncio.run(run(webhook, ids)), ""
    except Exception as exc:
        done, error = 0, f"{type(exc).__name__}: {exc}"[:100]
    print(
        json.dumps(
            {
                "done": done,
                "cpu": cpu_seconds() - cpu,
                "wall": time.perf_counter() - started,
                "error": error,
            }
        ),
        flush=True,
    )


async def compare(count: int) -> None:
    rows: list[list[Any]] = []
    for name in ("ours", "peer"):
        async with PortalProcess(rate_limit=None, operating_budget=None) as portal:
            await seed(portal)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--child",
                name,
                "--webhook",
                portal.webhook_url,
                "--commands",
                str(count),
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(process.communicate(), 600)
            result = json.loads(out.decode().strip().splitlines()[-1])
            stats = await portal.stats()
        label = "bitrix_docgen_async" if name == "ours" else "fast-bitrix24 1.8"
        rows.append(
            [
                label,
                result["done"],
                stats["requests"],
                f"{result['cpu'] / count * 1e6:.0f}",
                f"{result['wall']:.2f}",
                result["error"],
            ]
        )
    print(f"machine: {machine()}")
    print(
        table(
            ["client", "commands", "HTTP requests", "client CPU µs/command", "wall s", "error"],
            rows,
        )
    )


async def seed(portal: PortalProcess) -> None:
    from bitrix_docgen_async import DocgenClient

    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=None) as client:
        await asyncio.gather(*(client.numerators.add(f"N{i}") for i in range(50)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=5000)
    parser.add_argument("--child", choices=["ours", "peer"])
    parser.add_argument("--webhook")
    options = parser.parse_args()
    if options.child:
        child(options.child, options.webhook, options.commands)
    else:
        asyncio.run(compare(options.commands))
