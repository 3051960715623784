"""Child process of test_documents_open: streams one big PDF and reports its own peak RSS.

python stream_child.py BASE_URL  ->  one JSON line: bytes, head, content_type, length, RSS KiB
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys

from bitrix_docgen_async import DocgenClient
from bitrix_docgen_async.models import Document


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


async def main(base: str) -> None:
    document = Document(
        id=1,
        title="big",
        number="1",
        template_id=1,
        entity_type_id=2,
        entity_id=1,
        pdf_url_machine=f"{base}/rest/crm.documentgenerator.document.getPdf.json?token=x",
    )
    async with DocgenClient.from_webhook(f"{base}/rest/1/code/", rate_limit=None) as client:
        before = peak_kib()
        received, head = 0, b""
        async with client.documents.open(document, "pdf") as stream:
            async for chunk in stream:
                if not head:
                    head = chunk[:8]
                received += len(chunk)  # a consumer that passes the bytes on
            report = {
                "bytes": received,
                "head": head.decode("latin-1"),
                "content_type": stream.content_type,
                "length": stream.length,
                "peak_before_kib": before,
                "peak_after_kib": peak_kib(),
                "downloads": client.stats.downloads,
            }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
