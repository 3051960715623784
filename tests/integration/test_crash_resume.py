"""Kill a bulk run with SIGKILL at random moments, resume it, and count the documents."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
from collections import Counter
from pathlib import Path

from bitrix_docgen_async import RateLimit
from bitrix_docgen_async.testing import FakePortal

CHILD = Path(__file__).with_name("bulk_child.py")
ROOT = Path(__file__).resolve().parents[2]
COUNT = 150


async def start(portal: FakePortal, template: int, tmp: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        portal.webhook_url,
        str(template),
        str(COUNT),
        str(tmp / "run.db"),
        str(tmp / "out"),
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )


async def test_killed_runs_resume_without_duplicates(tmp_path: Path) -> None:
    rng = random.Random(5)
    async with FakePortal(
        rate_limit=RateLimit(burst=50, per_second=100.0),
        pdf_delay=0.05,
        method_costs={"crm.documentgenerator.document.add": 0.02},
    ) as portal:
        template = portal.seed_template()
        kills = 0
        for _ in range(4):
            child = await start(portal, template, tmp_path)
            assert child.stdout is not None
            # Let it get somewhere (a few results, or a random short time), then kill it.
            wanted = rng.randint(5, 40)
            deadline = asyncio.get_running_loop().time() + rng.uniform(0.5, 3.0)
            seen = 0
            while seen < wanted and asyncio.get_running_loop().time() < deadline:
                try:
                    line = await asyncio.wait_for(child.stdout.readline(), 0.2)
                except TimeoutError:
                    continue
                if not line:
                    break
                seen += 1
            if child.returncode is None:
                child.send_signal(signal.SIGKILL)
                kills += 1
            await asyncio.wait_for(child.wait(), 30)
        final = await start(portal, template, tmp_path)
        out, _ = await asyncio.wait_for(final.communicate(), 120)
        assert final.returncode == 0
        lines = out.decode().splitlines()
        assert len(lines) == COUNT and all(line.endswith(" ok") for line in lines), lines[:5]

        counts = Counter(int(d["entityId"]) for d in portal.documents.values())
        print(f"\n{kills} kills; documents per entity: {Counter(counts.values())}")
        assert kills >= 3
        assert counts == Counter(range(1, COUNT + 1))
        pdfs = sorted((tmp_path / "out").glob("document-*.pdf"))
        by_id = {int(d["id"]): int(d["entityId"]) for d in portal.documents.values()}
        assert len(pdfs) == COUNT
        for pdf in pdfs:
            doc_id = int(pdf.stem.split("-")[1])
            assert doc_id in by_id
            assert pdf.read_bytes() == portal.document_file(doc_id, "pdf")
        assert not list((tmp_path / "out").glob("*.part"))
