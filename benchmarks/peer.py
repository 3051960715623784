"""The same workload done with this library and with the `fast-bitrix24` package, side by side.

    pip install -e '.[bench]' && python benchmarks/peer.py [--count 200]

Workload: generate N documents for N deals, wait for their PDFs, download them. Each client runs
in its own process against its own fresh fake portal (also in its own process) with the same
limits: request bucket 50 / 10 per s, document.add 0.05 s, PDF conversion 1 s. "client CPU s"
is ``resource.getrusage`` of the client's process around the run, imports done before it.
The peer has no PDF polling or downloads of its own, so its run does what its users write:
``call()`` for the adds, ``get_by_ID()`` in a loop until every PDF URL is there, then aiohttp
GETs (8 at once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import PortalProcess, machine, table

RATE = {"burst": 50, "per_second": 10.0}
PORTAL = {
    "rate_limit": RATE,
    "operating_budget": {"limit_s": 480.0, "window_s": 600.0},
    "method_costs": {"crm.documentgenerator.document.add": 0.05},
    "pdf_delay": 1.0,
    "pdf_jitter": 0.25,
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def ours(webhook: str, template: int, count: int, out: Path) -> dict[str, Any]:
    from bitrix_docgen_async import DocgenClient, RateLimit
    from bitrix_docgen_async.core.pdf import PollSchedule

    async with DocgenClient.from_webhook(
        webhook,
        rate_limit=RateLimit(burst=50, per_second=10.0),
        pdf_schedule=PollSchedule(min_conversion=1.0, interval=1.0),
    ) as client:
        results = [
            r
            async for r in client.documents.generate_many(
                template_id=template,
                entity_type_id=2,
                entity_ids=range(1, count + 1),
                download_dir=out,
            )
        ]
    return {"ok": sum(r.ok for r in results)}


async def peer(webhook: str, template: int, count: int, out: Path) -> dict[str, Any]:
    import aiohttp
    from fast_bitrix24 import BitrixAsync

    bitrix = BitrixAsync(
        webhook, verbose=False, request_pool_size=50, requests_per_second=10.0, ssl=False
    )
    items = [
        {"templateId": template, "entityTypeId": 2, "entityId": e} for e in range(1, count + 1)
    ]
    added = await bitrix.call("crm.documentgenerator.document.add", items)
    ids = [int(r["document"]["id"]) if "document" in r else int(r["id"]) for r in added]
    pending, urls = set(ids), {}
    await asyncio.sleep(1.0)
    while pending:
        got = await bitrix.get_by_ID(
            "crm.documentgenerator.document.get", sorted(pending), ID_field_name="id"
        )
        for key, value in got.items():
            document = value.get("document", value)
            if document.get("pdfUrlMachine"):
                urls[int(key)] = document["pdfUrlMachine"]
                pending.discard(int(key))
        if pending:
            await asyncio.sleep(1.0)
    slots = asyncio.Semaphore(8)
    async with aiohttp.ClientSession() as session:

        async def fetch(doc_id: int, url: str) -> bool:
            async with slots, session.get(url) as reply:
                if reply.status != 200:
                    return False
                (out / f"document-{doc_id}.pdf").write_bytes(await reply.read())
                return True

        fetched = await asyncio.gather(*(fetch(i, u) for i, u in urls.items()))
    return {"ok": sum(fetched)}


def child(args: argparse.Namespace) -> None:
    out = Path(tempfile.mkdtemp(prefix="docgen-peer-"))
    run = ours if args.client == "ours" else peer
    # Imports before the timed region: "client CPU s" is the run's, not the interpreter's
    # loading of aiohttp and the library (about 0.2 s of CPU for either client).
    import aiohttp  # noqa: F401

    if args.client == "ours":
        import bitrix_docgen_async
        import bitrix_docgen_async.core.pdf  # noqa: F401
    else:
        import fast_bitrix24  # noqa: F401
    started, cpu = time.perf_counter(), cpu_seconds()
    try:
        outcome = asyncio.run(run(args.webhook, args.template, args.count, out))
        error = None
    except Exception as exc:  # report, do not hide: the table shows it
        outcome, error = {"ok": 0}, f"{type(exc).__name__}: {exc}"[:120]
    outcome.update(wall=time.perf_counter() - started, cpu=cpu_seconds() - cpu, error=error)
    print(json.dumps(outcome), flush=True)


async def compare(count: int) -> None:
    rows = []
    for name in ("ours", "peer"):
        async with PortalProcess(**json.loads(json.dumps(PORTAL))) as portal:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--child",
                name,
                "--webhook",
                portal.webhook_url,
                "--template",
                str(portal.template_id),
                "--count",
                str(count),
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(process.communicate(), 1800)
            result = json.loads(out.decode().strip().splitlines()[-1])
            stats = await portal.stats()
        label = "bitrix_docgen_async" if name == "ours" else "fast-bitrix24 1.8"
        rows.append(
            [
                label,
                f"{result['ok']}/{count}",
                stats["requests"],
                f"{stats['requests'] / count:.2f}",
                stats["rejected_rate_limit"],
                stats["rejected_operating"],
                f"{result['wall']:.1f}",
                f"{result['cpu']:.2f}",
                result["error"] or "",
            ]
        )
    print(f"machine: {machine()}")
    print(
        table(
            [
                "client",
                "PDFs",
                "HTTP requests",
                "req/doc",
                "503",
                "429",
                "wall s",
                "client CPU s",
                "error",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--child", choices=["ours", "peer"])
    parser.add_argument("--webhook")
    parser.add_argument("--template", type=int)
    options = parser.parse_args()
    if options.child:
        options.client = options.child
        child(options)
    else:
        asyncio.run(compare(options.count))
