"""``documents.open``: a document's file as chunks, paced and retried like ``download``."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bitrix_docgen_async import DocgenClient, DownloadError, FileStream, RateLimit
from bitrix_docgen_async.models import Document
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY

FAST = RateLimit(burst=50, per_second=200.0)
GET = "crm.documentgenerator.document.get"
CHILD = Path(__file__).with_name("stream_child.py")


async def read_all(stream: FileStream) -> bytes:
    return b"".join([chunk async for chunk in stream])


@pytest.mark.portal(rate_limit=FAST, pdf_delay=0.0)
async def test_open_streams_the_same_bytes_as_the_portal_serves(portal: FakePortal) -> None:
    template = portal.seed_template()
    doc_id = portal.seed_document(template, values={"Comment": "x"})
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        document = await client.documents.get(doc_id)
        before = portal.stats.requests
        for kind, content_type in (
            ("pdf", "application/pdf"),
            ("docx", "application/vnd.openxmlformats"),
        ):
            async with client.documents.open(document, kind, chunk_size=512) as stream:
                assert stream.content_type is not None
                assert stream.content_type.startswith(content_type)
                body = await read_all(stream)
            expected = portal.document_file(doc_id, kind)
            assert body == expected
            assert stream.length == len(expected)
            assert stream.extension == kind
        assert client.stats.downloads == 2
        assert portal.stats.requests - before == 2  # one request per open, nothing else


@pytest.mark.portal(rate_limit=FAST, pdf_delay=0.0)
async def test_open_refreshes_a_stale_url(portal: FakePortal) -> None:
    template = portal.seed_template()
    doc_id = portal.seed_document(template)
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        document = await client.documents.get(doc_id)
        assert document.pdf_url_machine is not None
        stale = document.pdf_url_machine.replace("token=", "token=x")
        document = attrs.evolve(document, pdf_url_machine=stale)
        gets = portal.stats.by_method[GET]
        async with client.documents.open(document) as stream:
            body = await read_all(stream)
        assert body == portal.document_file(doc_id, "pdf")
        assert portal.stats.by_method[GET] == gets + 1  # one document.get for fresh URLs


async def test_open_by_id_gets_the_document_first(portal: FakePortal) -> None:
    template = portal.seed_template()
    doc_id = portal.seed_document(template)
    async with (
        DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client,
        client.documents.open(doc_id, "docx") as stream,
    ):
        assert (await read_all(stream)) == portal.document_file(doc_id, "docx")


@pytest.fixture
async def file_server() -> AsyncIterator[tuple[str, dict[str, object]]]:
    """127.0.0.1: ``/file`` answers what the test sets (status, body, content type)."""
    answer: dict[str, object] = {"status": 200, "body": b"", "type": "application/pdf"}
    hits: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        hits.append(request.path)
        statuses = answer.get("statuses")
        status = statuses.pop(0) if isinstance(statuses, list) and statuses else answer["status"]
        assert isinstance(status, int)
        body = answer["body"] if status == 200 else b"busy"
        assert isinstance(body, bytes)
        return web.Response(status=status, body=body, headers={"Content-Type": str(answer["type"])})

    app = web.Application()
    app.router.add_get("/file", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    answer["hits"] = hits
    try:
        yield str(server.make_url("/file")), answer
    finally:
        await server.close()


def doc(url: str) -> Document:
    return Document(
        id=7,
        title="t",
        number="1",
        template_id=1,
        entity_type_id=2,
        entity_id=1,
        pdf_url_machine=url,
        download_url_machine=url,
    )


async def test_an_error_envelope_is_refused_before_the_block(
    file_server: tuple[str, dict[str, object]],
) -> None:
    url, answer = file_server
    answer["body"] = b'{"error":"ACCESS_DENIED","error_description":"Access denied"}'
    answer["type"] = "application/json"
    entered = False
    async with (
        FakePortal(rate_limit=FAST) as portal,
        DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client,
    ):
        with pytest.raises(DownloadError, match="ACCESS_DENIED") as caught:
            async with client.documents.open(doc(url)):
                entered = True
    assert not entered
    assert "token" not in str(caught.value) and url not in str(caught.value)


async def test_a_5xx_is_retried_and_each_attempt_takes_a_token(
    file_server: tuple[str, dict[str, object]],
) -> None:
    url, answer = file_server
    body = b"%PDF-1.4\n" + b"x" * 10_000
    answer["body"] = body
    answer["statuses"] = [503, 502, 200]
    async with (
        FakePortal(rate_limit=FAST) as portal,
        DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY) as client,
    ):
        async with client.documents.open(doc(url)) as stream:
            assert (await read_all(stream)) == body
        hits = answer["hits"]
        assert isinstance(hits, list) and len(hits) == 3
        assert client.stats.downloads == 3  # one request (and one token) per attempt


async def test_a_200_mb_pdf_streams_with_flat_memory() -> None:
    """Issue 16 acceptance: peak RSS growth of the consumer's process under 20 MB."""
    size = 200 << 20
    chunk = b"%PDF-1.4\n" + b"0" * ((1 << 16) - 9)

    async def pdf(request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse(headers={"Content-Type": "application/pdf"})
        reply.content_length = size
        await reply.prepare(request)
        sent = 0
        while sent < size:
            part = chunk[: min(len(chunk), size - sent)]
            await reply.write(part)
            sent += len(part)
        await reply.write_eof()
        return reply

    app = web.Application()
    app.router.add_get("/rest/crm.documentgenerator.document.getPdf.json", pdf)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        base = str(server.make_url("")).rstrip("/")
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(CHILD),
            base,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(child.communicate(), 300)
    finally:
        await server.close()
    assert child.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["bytes"] == size == report["length"]
    assert report["head"] == "%PDF-1.4"
    assert report["content_type"] == "application/pdf"
    assert report["downloads"] == 1
    growth_mib = (report["peak_after_kib"] - report["peak_before_kib"]) / 1024
    print(f"200 MiB streamed: peak RSS growth {growth_mib:.1f} MiB")
    assert growth_mib < 20
