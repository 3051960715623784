"""Client CPU per command (encode, send, parse, structure); limits off, portal in its own process.

    python benchmarks/overhead.py [--commands 10000] [--runs 3]   # the peer row needs '.[bench]'
    python benchmarks/overhead.py --child typed --webhook URL --profile out.prof  # one run

Workload: ``--commands`` concurrent ``crm.documentgenerator.document.get`` of ``--distinct``
seeded documents (default: as many as commands, so every client keeps every result: fast-bitrix24's
``get_by_ID`` returns one result per distinct id and would drop the repeats as they arrive;
models fully built where the row says so). Every row runs in a fresh client process
against one fake portal in another process (its CPU is not counted). Imports, the portal's
start, the client's set-up and one warm-up call happen before the timed region;
``resource.getrusage(RUSAGE_SELF)`` (user + system) of the client process is read around the
run itself. Each row is the median of ``--runs`` runs, taken in rounds (every row once per round).

Rows: ``typed`` (``asyncio.gather`` over ``client.documents.get`` -> ``Document``: a task per
call), ``typed-many`` (one ``client.documents.get_many(ids)``), ``raw`` (``gather`` over
``client.call``, dicts), ``raw-many`` (one ``client.call_many``), ``peer`` (fast-bitrix24's
``get_by_ID``, one call for all ids), and a floor: bare aiohttp posting the same 50-command
``batch`` requests, decoding them with the stdlib ``json`` (and with orjson when installed) and
keeping the results, as any client that hands them over must.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any
from urllib.parse import quote

from common import PortalProcess, machine, table

GET = "crm.documentgenerator.document.get"
ROWS = ("typed", "typed-many", "raw", "raw-many", "peer", "floor-json", "floor-orjson")
LABELS = {
    "typed": "bitrix_docgen_async documents.get (Document), gather",
    "typed-many": "bitrix_docgen_async documents.get_many (Document)",
    "raw": "bitrix_docgen_async client.call (dict), gather",
    "raw-many": "bitrix_docgen_async client.call_many (dict)",
    "peer": "fast-bitrix24 get_by_ID",
    "floor-json": "bare aiohttp + json (floor)",
    "floor-orjson": "bare aiohttp + orjson (floor)",
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ids_for(count: int, distinct: int) -> list[int]:
    return [(k % distinct) + 1 for k in range(count)]


async def run_ours(webhook: str, ids: list[int], row: str, profile: str | None) -> dict[str, Any]:
    from bitrix_docgen_async import DocgenClient

    async with DocgenClient.from_webhook(webhook, rate_limit=None, operating_budget=None) as c:
        await c.documents.get(1)  # warm-up: connection, first-call paths
        await c.call(GET, {"id": 1})
        await c.documents.get_many([1])
        await c.call_many(GET, [{"id": 1}])
        works = {
            "typed": lambda: asyncio.gather(*(c.documents.get(i) for i in ids)),
            "typed-many": lambda: c.documents.get_many(ids),
            "raw": lambda: asyncio.gather(*(c.call(GET, {"id": i}) for i in ids)),
            "raw-many": lambda: c.call_many(GET, [{"id": i} for i in ids]),
        }
        return await measured(works[row], profile)


async def run_peer(webhook: str, ids: list[int], profile: str | None) -> dict[str, Any]:
    from fast_bitrix24 import BitrixAsync

    # respect_velocity_policy=False crashes on a reply with time.operating (KeyError 'batch',
    # fast-bitrix24 1.8.14), so its pacing is on with limits far above what this run reaches.
    bitrix = BitrixAsync(
        webhook, verbose=False, request_pool_size=10_000, requests_per_second=10_000.0, ssl=False
    )
    await bitrix.get_by_ID(GET, [1], ID_field_name="id")  # warm-up
    return await measured(lambda: bitrix.get_by_ID(GET, ids, ID_field_name="id"), profile)


async def run_floor(
    webhook: str, ids: list[int], decoder: str, profile: str | None
) -> dict[str, Any]:
    import aiohttp

    if decoder == "orjson":
        import orjson

        loads: Any = orjson.loads
    else:
        loads = json.loads
    url = webhook.rstrip("/") + "/batch.json"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    async with aiohttp.ClientSession() as session:

        async def post(chunk: list[int]) -> list[Any]:
            # The same form body as a batch of document.get commands (cmd[cN]=method?id=N).
            body = "halt=0&" + "&".join(
                f"cmd%5Bc{n}%5D={quote(f'{GET}?id={i}', safe='')}" for n, i in enumerate(chunk)
            )
            async with session.post(url, data=body.encode(), headers=headers) as reply:
                data = loads(await reply.read())
            return list(data["result"]["result"].values())

        await post([1])  # warm-up

        async def work() -> list[Any]:
            # Kept, as a client keeps what it hands over (freeing them at once costs less).
            chunks = [ids[k : k + 50] for k in range(0, len(ids), 50)]
            replies = await asyncio.gather(*(post(chunk) for chunk in chunks))
            return [result for reply in replies for result in reply]

        return await measured(work, profile)


async def measured(work: Any, profile: str | None) -> dict[str, Any]:
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    started, cpu = time.perf_counter(), cpu_seconds()
    if profiler is not None:
        profiler.enable()
    found = await work()
    if profiler is not None:
        profiler.disable()
    spent, wall = cpu_seconds() - cpu, time.perf_counter() - started
    if profiler is not None:
        profiler.dump_stats(profile)
    return {"done": len(found), "cpu": spent, "wall": wall}


def child(name: str, webhook: str, ids: list[int], profile: str | None) -> None:
    try:
        if name in ("typed", "typed-many", "raw", "raw-many"):
            outcome = asyncio.run(run_ours(webhook, ids, name, profile))
        elif name == "peer":
            outcome = asyncio.run(run_peer(webhook, ids, profile))
        else:
            outcome = asyncio.run(run_floor(webhook, ids, name.split("-")[1], profile))
        outcome["error"] = ""
    except Exception as exc:  # report, do not hide: the table shows it
        outcome = {
            "done": 0,
            "cpu": 0.0,
            "wall": 0.0,
            "error": f"{type(exc).__name__}: {exc}"[:100],
        }
    print(json.dumps(outcome), flush=True)


def available(name: str) -> str:
    """'' when the row can run here, else why not."""
    module = {"peer": "fast_bitrix24", "floor-orjson": "orjson"}.get(name)
    if module is None:
        return ""
    try:
        __import__(module)
    except ImportError:
        return f"{module} is not installed"
    return ""


async def compare(count: int, distinct: int, runs: int, only: list[str]) -> None:
    rows: list[list[Any]] = []
    runnable = [name for name in only if not available(name)]
    done: dict[str, list[dict[str, Any]]] = {name: [] for name in runnable}
    async with PortalProcess(rate_limit=None, operating_budget=None, seed_documents=distinct) as p:
        # Rounds, not row after row: each round runs every row once, so a slow minute on a
        # shared machine lands on all rows alike instead of on one.
        for _ in range(runs):
            for name in runnable:
                before = await p.stats()
                out = await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, __file__, "--child", name, "--webhook", p.webhook_url,
                     "--commands", str(count), "--distinct", str(distinct)],
                    capture_output=True, timeout=600, check=False,
                )  # fmt: skip
                result = json.loads(out.stdout.decode().strip().splitlines()[-1])
                after = await p.stats()
                result["requests"] = after["requests"] - before["requests"]
                result["commands"] = after["commands"] - before["commands"]
                done[name].append(result)
    for name in only:
        missing = available(name)
        if missing:
            rows.append([LABELS[name], "-", "-", "-", "-", missing])
            continue
        results = done[name]
        errors = {r["error"] for r in results if r["error"]}
        cpu = statistics.median(r["cpu"] for r in results)
        rows.append(
            [
                LABELS[name],
                f"{min(r['done'] for r in results)} / {max(r['commands'] for r in results)}",
                max(r["requests"] for r in results),
                f"{cpu / count * 1e6:.1f}",
                f"{statistics.median(r['wall'] for r in results):.2f}",
                "; ".join(sorted(errors)),
            ]
        )
    print(
        f"machine: {machine()}; {count} commands over {distinct} documents, "
        f"median of {runs} interleaved runs"
    )
    print(
        table(
            [
                "client",
                "results / commands sent",
                "HTTP requests",
                "client CPU µs/command",
                "wall s",
                "note",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--commands", type=int, default=10_000)
    parser.add_argument(
        "--distinct", type=int, help="documents seeded and asked for (default: --commands)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    parser.add_argument("--child", choices=ROWS)
    parser.add_argument("--webhook")
    parser.add_argument("--profile", help="with --child: write a cProfile dump of the run here")
    options = parser.parse_args()
    distinct = options.distinct or options.commands
    if options.child:
        child(options.child, options.webhook, ids_for(options.commands, distinct), options.profile)
    else:
        asyncio.run(compare(options.commands, distinct, options.runs, options.rows))
