"""generate_many waits for PDFs by the poller's one rule and raises what the poller raises.

Before, the bulk run had its own readiness check and ended a wait with a bare ``BitrixError``,
where ``wait_for_pdf`` raises ``PollTimeoutError`` and reports failed conversions.
"""

from __future__ import annotations

from pathlib import Path

from bitrix_docgen_async import DocgenClient, DownloadError, PollTimeoutError, RateLimit
from bitrix_docgen_async.core.pdf import PollSchedule
from bitrix_docgen_async.models import Document
from bitrix_docgen_async.testing import FakePortal
from bitrix_docgen_async.workflows.bulk import GenerationResult
from tests.helpers import FAST_RETRY

FAST = RateLimit(burst=50, per_second=200.0)
SCHEDULE = PollSchedule(min_conversion=0.0, interval=0.02, max_interval=0.05)


async def run(portal: FakePortal, **options: object) -> list[GenerationResult]:
    template = portal.seed_template()
    async with DocgenClient.from_webhook(
        portal.webhook_url, rate_limit=FAST, pdf_schedule=SCHEDULE, retry=FAST_RETRY
    ) as client:
        return [
            result
            async for result in client.documents.generate_many(
                template_id=template, entity_type_id=2, entity_ids=range(1, 6), **options
            )
        ]


async def test_a_pdf_past_its_timeout_is_a_poll_timeout() -> None:
    async with FakePortal(rate_limit=FAST, pdf_delay=60.0) as portal:
        results = await run(portal, wait_pdf=True, pdf_timeout=0.2)
    assert len(results) == 5
    for result in results:
        assert isinstance(result.error, PollTimeoutError), result.error
        [pending] = result.error.pending
        pending_id = pending.id if isinstance(pending, Document) else pending
        assert pending_id == result.document_id


async def test_a_failed_conversion_is_a_download_error(tmp_path: Path) -> None:
    async with FakePortal(rate_limit=FAST, pdf_delay=0.0, pdf_failure_rate=1.0) as portal:
        results = await run(portal, download_dir=tmp_path, pdf_timeout=10.0)
    assert len(results) == 5
    for result in results:
        assert isinstance(result.error, DownloadError), result.error
        assert "conversion failed" in str(result.error)
        assert result.error.document_id == result.document_id
    assert list(tmp_path.iterdir()) == []
