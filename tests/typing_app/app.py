"""A user's small service, type-checked with ``mypy --strict`` outside the repository (.ci/run).

It uses the package as the README shows: the root names, typed client options, typed results.
``.ci/run`` also checks a copy with ``rate_limit=`` misspelled, which mypy must refuse.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bitrix_docgen_async import (
    BitrixError,
    DocgenClient,
    GenerationResult,
    PollSchedule,
    Progress,
    RateLimit,
    ResponseRecord,
)
from bitrix_docgen_async.models import Document, EntityType, Numerator
from bitrix_docgen_async.testing import FakePortal


def report(progress: Progress) -> None:
    print(progress.added, progress.ready, progress.failed)


def trace(record: ResponseRecord) -> None:
    print(record.method, record.batch_size, record.status, f"{record.duration:.3f}")


async def main(folder: Path) -> list[GenerationResult]:
    async with FakePortal(pdf_delay=0.1) as portal:
        template_id = portal.seed_template()
        async with DocgenClient.from_webhook(
            portal.webhook_url,
            rate_limit=RateLimit.standard(),
            pdf_schedule=PollSchedule(min_conversion=0.1, interval=0.1),
            on_response=trace,
        ) as client:
            document: Document = await client.documents.add(
                template_id, EntityType.DEAL, 1, values={"Comment": "x"}, check_values=True
            )
            numerator: Numerator = await client.call(
                "crm.documentgenerator.numerator.get", {"id": 1}, into=Numerator, key="numerator"
            )
            print(document.id, numerator.name)
            async with client.documents.open(document, "docx") as stream:
                size = 0
                async for chunk in stream:
                    size += len(chunk)
                print(stream.content_type, stream.length, size)
            results: list[GenerationResult] = []
            async for result in client.documents.generate_many(
                template_id=template_id,
                entity_type_id=EntityType.DEAL,
                entity_ids=range(2, 5),
                download_dir=folder,
                on_progress=report,
            ):
                if result.error is not None:
                    error: BitrixError = result.error  # always the library's own class
                    print(type(error).__name__, error.retryable)
                results.append(result)
            return results


if __name__ == "__main__":
    asyncio.run(main(Path("out")))
