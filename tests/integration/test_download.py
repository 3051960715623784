"""Streaming, atomic downloads of documents' files from the fake portal's machine URLs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bitrix_docgen_async import DocgenClient, DownloadError, RateLimit
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY, oauth_client

FAST = RateLimit(burst=50, per_second=200.0)


async def test_each_kind_is_saved_byte_identical(tmp_path: Path) -> None:
    async with FakePortal(rate_limit=FAST, pdf_delay=0.0) as portal:
        doc_id = portal.seed_document(portal.seed_template(), 2, 7)
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
            document = await client.documents.get(doc_id)
            pdf = await client.documents.download(document, tmp_path)
            docx = await client.documents.download(document, tmp_path, kind="docx")
            image = await client.documents.download(doc_id, tmp_path / "img", kind="image")
            named = await client.documents.download(document, tmp_path, filename="named.pdf")
        assert pdf == tmp_path / f"document-{doc_id}.pdf"
        assert pdf.read_bytes() == portal.document_file(doc_id, "pdf")
        assert pdf.read_bytes().startswith(b"%PDF-")
        assert docx.read_bytes() == portal.document_file(doc_id, "docx")
        assert image.suffix == ".png" and image.read_bytes() == portal.document_file(
            doc_id, "image"
        )
        assert named == tmp_path / "named.pdf" and named.read_bytes() == pdf.read_bytes()
        assert client.stats.downloads == 4
        assert not list(tmp_path.rglob("*.part"))


async def test_no_pdf_yet_is_a_clear_error(tmp_path: Path) -> None:
    async with FakePortal(rate_limit=FAST, pdf_delay=60.0) as portal:
        doc_id = portal.seed_document(portal.seed_template(), 2, 7)
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
            with pytest.raises(DownloadError, match="no file yet"):
                await client.documents.download(doc_id, tmp_path)
        assert list(tmp_path.iterdir()) == []


async def test_a_stale_url_is_refreshed_once(tmp_path: Path) -> None:
    async with FakePortal(rate_limit=FAST, pdf_delay=0.0) as portal:
        doc_id = portal.seed_document(portal.seed_template(), 2, 7)
        async with oauth_client(portal, rate_limit=FAST) as client:
            document = await client.documents.get(doc_id)
            portal.expire_access_tokens()  # the URL's embedded token dies with it
            path = await client.documents.download(document, tmp_path)
        assert path.read_bytes() == portal.document_file(doc_id, "pdf")
        assert portal.stats.token_refreshes == 1


async def test_a_failed_download_leaves_nothing_and_no_url_leaks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakePortal(rate_limit=FAST, pdf_delay=0.0) as portal:
        doc_id = portal.seed_document(portal.seed_template(), 2, 7)
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY
        ) as client:
            document = await client.documents.get(doc_id)
            assert document.pdf_url_machine
            portal.faults.inject(
                "html_502", count=50, method="crm.documentgenerator.document.getpdf"
            )
            with pytest.raises(DownloadError) as caught:
                await client.documents.download(document, tmp_path)
        assert caught.value.status == 502
        assert list(tmp_path.iterdir()) == []
        secret = portal.webhook_url.rstrip("/").rsplit("/", 1)[1]
        texts = [str(caught.value), repr(caught.value), *(r.getMessage() for r in caplog.records)]
        assert not [t for t in texts if secret in t or document.pdf_url_machine in t]
