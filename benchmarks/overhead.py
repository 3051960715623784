"""Client CPU per command (encode, send, parse, structure); limits off, portal in its own process.

    python benchmarks/overhead.py [--commands 10000] [--runs 3]   # the peer row needs '.[bench]'
    python benchmarks/overhead.py --child typed --webhook URL --profile out.prof  # one run

Workload: ``--commands`` concurrent ``crm.documentgenerator.document.get`` of 50 seeded
documents (models fully built where the row says so). Every row runs in a fresh client process
against one fake portal in another process (its CPU is not counted). Imports, the portal's
start, the client's set-up and one warm-up call happen before the timed region;
``resource.getrusage(RUSAGE_SELF)`` (user + system) of the client process is read around the
run itself. Each row is the median of ``--runs`` runs.

Rows: ``typed`` (``asyncio.gather`` over ``client.documents.get`` -> ``Document``: a task per
call), ``typed-many`` (one ``client.documents.get_many(ids)``), ``raw`` (``gather`` over
``client.call``, dicts), ``raw-many`` (one ``client.call_many``), ``peer`` (fast-bitrix24's
``get_by_ID``, one call for all ids), and a floor: bare aiohttp posting the same 50-command
``batch`` requests and decoding them with the stdlib ``json`` (and with orjson when installed).
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
SEEDED = 50
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


def ids_for(count: int) -> list[int]:
    return [(k % SEEDED) + 1 for k in range(count)]


async def run_ours(webhook: str, count: int, row: str, profile: str | None) -> dict[str, Any]:
    from bitrix_docgen_async import DocgenClient

    ids = ids_for(count)
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


async def run_peer(webhook: str, count: int, profile: str | None) -> dict[str, Any]:
    from fast_bitrix24 import BitrixAsync

    # respect_velocity_policy=False crashes on a reply with time.operating (KeyError 'batch',
    # fast-bitrix24 1.8.14), so its pacing is on with limits far above what this run reaches.
    bitrix = BitrixAsync(
        webhook, verbose=False, request_pool_size=10_000, requests_per_second=10_000.0, ssl=False
    )
    await bitrix.get_by_ID(GET, [1], ID_field_name="id")  # warm-up
    ids = ids_for(count)
    return await measured(lambda: bitrix.get_by_ID(GET, ids, ID_field_name="id"), profile)


async def run_floor(webhook: str, count: int, decoder: str, profile: str | None) -> dict[str, Any]:
    import aiohttp

    if decoder == "orjson":
        import orjson

        loads: Any = orjson.loads
    else:
        loads = json.loads
    url = webhook.rstrip("/") + "/batch.json"
    ids = ids_for(count)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    async with aiohttp.ClientSession() as session:

        async def post(chunk: list[int]) -> int:
            # The same form body as a batch of document.get commands (cmd[cN]=method?id=N).
            body = "halt=0&" + "&".join(
                f"cmd%5Bc{n}%5D={quote(f'{GET}?id={i}', safe='')}" for n, i in enumerate(chunk)
            )
            async with session.post(url, data=body.encode(), headers=headers) as reply:
                data = loads(await reply.read())
            return len(data["result"]["result"])

        await post([1])  # warm-up

        def work() -> Any:
            chunks = [ids[k : k + 50] for k in range(0, len(ids), 50)]
            return asyncio.gather(*(post(chunk) for chunk in chunks))

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
    # The floor's gather returns commands per request; the others one item per command.
    floor = bool(found) and isinstance(found, list) and isinstance(found[0], int)
    done = sum(found) if floor else len(found)
    return {"done": done, "cpu": spent, "wall": wall}


def child(name: str, webhook: str, count: int, profile: str | None) -> None:
    try:
        if name in ("typed", "typed-many", "raw", "raw-many"):
            outcome = asyncio.run(run_ours(webhook, count, name, profile))
        elif name == "peer":
            outcome = asyncio.run(run_peer(webhook, count, profile))
        else:
            outcome = asyncio.run(run_floor(webhook, count, name.split("-")[1], profile))
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


async def compare(count: int, runs: int, only: list[str]) -> None:
    rows: list[list[Any]] = []
    async with PortalProcess(rate_limit=None, operating_budget=None, seed_documents=SEEDED) as p:
        for name in only:
            missing = available(name)
            if missing:
                rows.append([LABELS[name], "-", "-", "-", "-", missing])
                continue
            results, requests, commands = [], [], []
            for _ in range(runs):
                before = await p.stats()
                out = await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, __file__, "--child", name, "--webhook", p.webhook_url,
                     "--commands", str(count)],
                    capture_output=True, timeout=600, check=False,
                )  # fmt: skip
                result = json.loads(out.stdout.decode().strip().splitlines()[-1])
                after = await p.stats()
                requests.append(after["requests"] - before["requests"])
                commands.append(after["commands"] - before["commands"])
                results.append(result)
            errors = {r["error"] for r in results if r["error"]}
            cpu = statistics.median(r["cpu"] for r in results)
            rows.append(
                [
                    LABELS[name],
                    f"{min(r['done'] for r in results)} / {max(commands)}",
                    max(requests),
                    f"{cpu / count * 1e6:.1f}",
                    f"{statistics.median(r['wall'] for r in results):.2f}",
                    "; ".join(sorted(errors)),
                ]
            )
    print(f"machine: {machine()}; {count} commands, median of {runs} runs")
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
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    parser.add_argument("--child", choices=ROWS)
    parser.add_argument("--webhook")
    parser.add_argument("--profile", help="with --child: write a cProfile dump of the run here")
    options = parser.parse_args()
    if options.child:
        child(options.child, options.webhook, options.commands, options.profile)
    else:
        asyncio.run(compare(options.commands, options.runs, options.rows))
