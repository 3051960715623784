"""``bitrix-docgen emulator``: the offline-event feature flags and ONAPPINSTALL on request."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from bitrix_docgen_async.receiver import DocumentEvent, EventReceiver

ROOT = Path(__file__).resolve().parents[2]
PIPE = asyncio.subprocess.PIPE


async def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait (bounded) until ``condition()`` holds; progress made by other tasks or processes."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_install_handler_and_feature_flags(http: aiohttp.ClientSession) -> None:
    tokens: dict[str, str] = {}

    async def ignore(event: DocumentEvent) -> None:
        return None

    receiver = EventReceiver(tokens=tokens, handler=ignore)
    runner = web.AppRunner(receiver.app("/install"), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/install"
    emulator = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bitrix_docgen_async.cli", "emulator", "--json", "--fast",
        "--no-offline-confirm", "--no-auth-connector", "--install-handler", url,
        stdout=PIPE, stderr=PIPE, cwd=ROOT,
    )  # fmt: skip
    assert emulator.stdout is not None
    try:
        info = json.loads(await asyncio.wait_for(emulator.stdout.readline(), 30))
        first = json.loads(await asyncio.wait_for(emulator.stdout.readline(), 30))["installed"]
        assert first["handler"] == url and first["member_id"] == info["member_id"]
        await eventually(lambda: receiver.stats.app_events["install"] >= 1)
        assert tokens == {info["member_id"]: first["application_token"]}

        emulator.send_signal(signal.SIGUSR1)  # installed again: another token, refused
        second = json.loads(await asyncio.wait_for(emulator.stdout.readline(), 30))["installed"]
        assert second["application_token"] != first["application_token"]
        await eventually(lambda: receiver.stats.rejected["install_conflict"] >= 1)
        assert tokens == {info["member_id"]: first["application_token"]}

        for code in ("rest_offline_extended", "rest_auth_connector"):
            body = {"CODE": code, "auth": info["access_token"]}
            async with http.post(info["client_endpoint"] + "feature.get", json=body) as answer:
                assert (await answer.json())["result"] == {"value": "N"}
    finally:
        emulator.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(emulator.communicate(), 30)
        await runner.cleanup()
    assert emulator.returncode == 0, err.decode()
