"""Downloaded files: the destination is a folder, bodies are checked, modes follow the umask.

Issue 12, observations 4 (a folder whose name has a dot became one file), 5 (error pages saved
as PDFs) and 6 (files left at mode 0600; a resumed run deleted another run's ``.part`` files).
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bitrix_docgen_async import DocgenClient, DownloadError, RateLimit
from bitrix_docgen_async.cli import main
from bitrix_docgen_async.core.pdf import PollSchedule
from bitrix_docgen_async.models import Document
from bitrix_docgen_async.testing import FakePortal
from bitrix_docgen_async.workflows.download import Kind
from tests.helpers import FAST_RETRY

FAST = RateLimit(burst=50, per_second=200.0)
SCHEDULE = PollSchedule(min_conversion=0.0, interval=0.02)


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield None
    finally:
        os.umask(previous)


async def generate(
    client: DocgenClient, template: int, ids: range, folder: Path, **options: object
) -> list[Path]:
    paths: list[Path] = []
    async for result in client.documents.generate_many(
        template_id=template, entity_type_id=2, entity_ids=ids, download_dir=folder, **options
    ):
        assert result.ok, result.error
        assert result.pdf_path is not None
        paths.append(result.pdf_path)
    return paths


# -- observation 4: download_dir is always a folder ------------------------------------------


async def test_a_missing_download_dir_with_a_dot_is_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "exports" / "2024.01"
    async with FakePortal(rate_limit=FAST, pdf_delay=0.0) as portal:
        template = portal.seed_template()
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, pdf_schedule=SCHEDULE, retry=FAST_RETRY
        ) as client:
            paths = await generate(client, template, range(1, 11), folder)
        assert folder.is_dir()
        assert len(set(paths)) == 10
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            f"document-{d}.pdf" for d in portal.documents
        )
        for path in paths:
            assert path.parent == folder
            doc_id = int(path.stem.split("-")[1])
            assert path.read_bytes() == portal.document_file(doc_id, "pdf")


async def test_download_dest_is_a_folder_whatever_its_name(tmp_path: Path) -> None:
    async with FakePortal(rate_limit=FAST, pdf_delay=0.0) as portal:
        doc_id = portal.seed_document(portal.seed_template(), 2, 7)
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
            first = await client.documents.download(doc_id, tmp_path / "x.pdf")
            named = await client.documents.download(doc_id, tmp_path / "v1.2", filename="a.pdf")
        assert first == tmp_path / "x.pdf" / f"document-{doc_id}.pdf"
        assert named == tmp_path / "v1.2" / "a.pdf"
        assert first.read_bytes() == named.read_bytes() == portal.document_file(doc_id, "pdf")


async def test_a_folder_removed_between_downloads_is_made_again(tmp_path: Path) -> None:
    # The client makes a folder once per run, not for every file; one removed meanwhile is
    # made again when the next file cannot be created in it.
    folder = tmp_path / "out"
    async with FakePortal(rate_limit=FAST, pdf_delay=0.0) as portal:
        template = portal.seed_template()
        first, second = (portal.seed_document(template, 2, n) for n in (1, 2))
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
            one = await client.documents.download(first, folder)
            one.unlink()
            folder.rmdir()
            two = await client.documents.download(second, folder)
        assert two == folder / f"document-{second}.pdf"
        assert two.read_bytes() == portal.document_file(second, "pdf")


def test_the_cli_out_with_a_dot_is_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--fast", "-n", "6", "--out", "exports/2024.01"]) == 0
    capsys.readouterr()
    folder = tmp_path / "exports" / "2024.01"
    pdfs = sorted(folder.glob("document-*.pdf"))
    assert len(pdfs) == 6
    assert all(p.read_bytes().startswith(b"%PDF-") for p in pdfs)


# -- observation 5: a 200 that is not the file -------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
DOCX = b"PK\x03\x04" + b"\0" * 32
LOGIN = (
    b"<!DOCTYPE html>\n<html><head><title>Authorization</title></head>"
    b"<body><form action='/auth/'>Log in</form></body></html>"
)
DENIED = b'{"error":"ACCESS_DENIED","error_description":"Access denied"}'


@pytest.fixture
async def file_server() -> AsyncIterator[tuple[str, dict[str, tuple[bytes, str]]]]:
    """A 127.0.0.1 server answering 200 with whatever body the test puts under a path."""
    bodies: dict[str, tuple[bytes, str]] = {}

    async def serve(request: web.Request) -> web.Response:
        body, content_type = bodies[request.path]
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/{name}", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), bodies
    finally:
        await server.close()


def document(url: str) -> Document:
    return Document(
        id=61,
        title="Invoice",
        number="1",
        template_id=1,
        entity_type_id=2,
        entity_id=1,
        pdf_url_machine=url,
        download_url_machine=url,
        image_url_machine=url,
    )


@pytest.mark.parametrize(
    ("kind", "body", "content_type", "says"),
    [
        ("pdf", DENIED, "application/json", "ACCESS_DENIED"),
        ("pdf", LOGIN, "text/html; charset=UTF-8", "HTML page"),
        ("pdf", LOGIN, "application/pdf", "HTML page"),  # a lying Content-Type
        ("pdf", b"", "application/pdf", "empty body"),
        ("pdf", PNG, "application/pdf", "not the pdf"),
        ("docx", DENIED, "application/octet-stream", "ACCESS_DENIED"),
        ("docx", PDF, "application/octet-stream", "not the docx"),
        ("image", LOGIN, "image/png", "HTML page"),
        ("image", DOCX, "image/png", "not the image"),
        ("pdf", b'{"result": []}', "application/json", "JSON, not a file"),
    ],
)
async def test_a_200_that_is_not_the_file_is_a_download_error(
    tmp_path: Path,
    file_server: tuple[str, dict[str, tuple[bytes, str]]],
    kind: Kind,
    body: bytes,
    content_type: str,
    says: str,
) -> None:
    base, bodies = file_server
    bodies["/file"] = (body, content_type)
    async with (
        FakePortal(rate_limit=FAST) as portal,
        DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client,
    ):
        with pytest.raises(DownloadError, match=says) as caught:
            await client.documents.download(document(base + "/file"), tmp_path, kind)
        assert client.stats.downloads == 1
    assert caught.value.document_id == 61 and caught.value.status == 200
    assert "/file" not in str(caught.value) and "127.0.0.1" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # nothing renamed into place, no .part left


@pytest.mark.parametrize(
    ("kind", "body", "suffix"),
    [
        ("pdf", PDF, "pdf"),
        ("pdf", b"\xef\xbb\xbf" + PDF, "pdf"),  # bytes before the header, as readers allow
        ("docx", DOCX, "docx"),
        ("image", PNG, "png"),
        ("image", b"\xff\xd8\xff\xe0" + b"\0" * 16, "jpg"),
        ("image", b"GIF89a" + b"\0" * 16, "gif"),
        ("image", b"RIFF\x10\0\0\0WEBPVP8 ", "webp"),
    ],
)
async def test_real_files_are_saved_with_their_extension(
    tmp_path: Path,
    file_server: tuple[str, dict[str, tuple[bytes, str]]],
    kind: Kind,
    body: bytes,
    suffix: str,
) -> None:
    base, bodies = file_server
    bodies["/file"] = (body, "application/octet-stream")
    async with (
        FakePortal(rate_limit=FAST) as portal,
        DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client,
    ):
        path = await client.documents.download(document(base + "/file"), tmp_path, kind)
    assert path == tmp_path / f"document-61.{suffix}"
    assert path.read_bytes() == body


# -- observation 6: modes and other runs' temporary files --------------------------------------


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
async def test_downloads_honour_the_umask(tmp_path: Path, mask: int) -> None:
    os.umask(mask)
    async with FakePortal(rate_limit=FAST, pdf_delay=0.0) as portal:
        doc_id = portal.seed_document(portal.seed_template(), 2, 7)
        async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
            paths = [
                await client.documents.download(doc_id, tmp_path, kind)
                for kind in ("pdf", "docx", "image")
            ]
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path


def part_name(doc_id: int, pid: int) -> str:
    tag = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    return f".document-{doc_id}.{tag}-{pid}-0badc0de.part"


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


async def test_a_resumed_run_keeps_other_runs_temporary_files(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    running = folder / part_name(900, os.getppid())  # a live process: another run's download
    crashed = folder / part_name(901, dead_pid())  # left by a run that was killed
    foreign = folder / ".document-902.part"  # not ours to judge
    for leftover in (running, crashed, foreign):
        leftover.write_bytes(b"%PDF-partial")
    async with FakePortal(rate_limit=FAST, pdf_delay=0.0) as portal:
        template = portal.seed_template()
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, pdf_schedule=SCHEDULE, retry=FAST_RETRY
        ) as client:
            paths = await generate(
                client, template, range(1, 4), folder, journal=tmp_path / "run.db"
            )
    assert len(paths) == 3
    assert running.exists() and foreign.exists()
    assert not crashed.exists()
    assert sorted(p.name for p in folder.glob("*.part")) == sorted([running.name, foreign.name])
