"""``bitrix-docgen emulator``: serves the fake portal standalone until SIGTERM/Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

from bitrix_docgen_async import DocgenClient
from bitrix_docgen_async.core.pdf import PollSchedule

ROOT = Path(__file__).resolve().parents[2]
PIPE = asyncio.subprocess.PIPE


async def start(*argv: str) -> tuple[asyncio.subprocess.Process, str]:
    """The emulator process and the first line it prints (the webhook URL)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bitrix_docgen_async.cli", "emulator", *argv,
        stdout=PIPE, stderr=PIPE, cwd=ROOT,
    )  # fmt: skip
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 30)
    return child, line.decode().strip()


async def stop(child: asyncio.subprocess.Process, how: signal.Signals) -> str:
    child.send_signal(how)
    out, err = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
    return out.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serves_a_seeded_portal_until_sigterm() -> None:
    child, url = await start("--seed", "demo", "--fast")
    try:
        assert url.startswith("http://127.0.0.1:") and "/rest/1/" in url
        assert child.stdout is not None
        seeded = (await asyncio.wait_for(child.stdout.readline(), 30)).decode()
        fields = dict(item.split("=") for item in seeded.split())
        schedule = PollSchedule(min_conversion=0.0, interval=0.2)
        async with DocgenClient.from_webhook(url, pdf_schedule=schedule) as client:
            raw = await client.call("crm.documentgenerator.numerator.list", {})
            assert [n["name"] for n in raw["numerators"]] == ["Demo invoices"]
            template = await client.templates.get(int(fields["template_id"]))
            assert template.name == "Demo invoice"
            doc_ids = [int(i) for i in fields["document_ids"].split(",")]
            assert len(doc_ids) == 5
            ready = await client.documents.wait_for_pdf(doc_ids, timeout=20)
            assert all(d.pdf_ready for d in ready)
    finally:
        if child.returncode is None:
            await stop(child, signal.SIGTERM)


async def test_a_fixed_port_and_webhook_code_then_ctrl_c() -> None:
    port = free_port()
    child, url = await start("--port", str(port), "--webhook-code", "abc123", "--fast")
    try:
        assert url == f"http://127.0.0.1:{port}/rest/1/abc123/"
        async with DocgenClient.from_webhook(url) as client:
            page = await client.numerators.list()
            assert page.items == ()
    finally:
        await stop(child, signal.SIGINT)


async def test_a_busy_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bitrix_docgen_async.cli", "emulator", "--port", str(port),
            stdout=PIPE, stderr=PIPE, cwd=ROOT,
        )  # fmt: skip
        out, err = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode == 2
    assert out == b""
    [line] = err.decode().splitlines()
    assert f"cannot listen on 127.0.0.1:{port}" in line
