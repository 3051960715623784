"""Peak RSS of the client while generate_many walks 100,000 entity ids (portal in another process).

python benchmarks/memory.py [--entities 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from common import HERE, PortalProcess, machine, peak_rss_mb, table

from bitrix_docgen_async import DocgenClient
from bitrix_docgen_async.models import Document


def ids(count: int) -> Iterator[int]:
    yield from range(1, count + 1)


async def download(size_mb: int) -> list[object]:
    """Stream one ``size_mb`` file through ``documents.download``; the peak RSS it adds."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "big_file_server.py"),
        str(size_mb),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdin is not None
    port = int(await asyncio.wait_for(process.stdout.readline(), 30))
    base = f"http://127.0.0.1:{port}"
    document = Document(
        id=1,
        title="big",
        number="1",
        template_id=1,
        entity_type_id=2,
        entity_id=1,
        pdf_url_machine=f"{base}/rest/crm.documentgenerator.document.getPdf.json?token=x",
    )
    folder = Path(tempfile.mkdtemp(prefix="docgen-big-"))
    try:
        async with DocgenClient.from_webhook(f"{base}/rest/1/code/", rate_limit=None) as client:
            before = peak_rss_mb()
            started = time.perf_counter()
            path = await client.documents.download(document, folder)
            wall = time.perf_counter() - started
            size = path.stat().st_size
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        process.stdin.write(b"\n")
        await process.stdin.drain()
        await asyncio.wait_for(process.wait(), 30)
    return [
        f"{size / (1 << 20):.0f} MiB",
        f"{wall:.1f}",
        f"{peak_rss_mb():.0f} (before {before:.0f})",
    ]


async def main(count: int, size_mb: int) -> None:
    # The download first: peak RSS only grows, so the second figure covers both runs.
    downloaded = await download(size_mb) if size_mb else None
    async with PortalProcess(rate_limit=None, operating_budget=None, pdf_delay=0.0) as portal:
        before = peak_rss_mb()
        started = time.perf_counter()
        ok = 0
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=None) as client:
            async for result in client.documents.generate_many(
                template_id=portal.template_id,
                entity_type_id=2,
                entity_ids=ids(count),
                wait_pdf=False,
            ):
                ok += result.ok
        wall = time.perf_counter() - started
        stats = await portal.stats()
    print(f"machine: {machine()}")
    print(
        table(
            ["entities", "ok", "documents", "HTTP requests", "wall s", "client peak RSS MiB"],
            [
                [
                    count,
                    ok,
                    stats["documents"],
                    stats["requests"],
                    f"{wall:.1f}",
                    f"{peak_rss_mb():.0f} (at start {before:.0f})",
                ]
            ],
        )
    )
    if downloaded is not None:
        print()
        print(table(["download", "wall s", "client peak RSS MiB"], [downloaded]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--download-mb", type=int, default=200)
    options = parser.parse_args()
    asyncio.run(main(options.entities, options.download_mb))
