"""Helpers shared by the benchmark scripts: a portal in another process, RSS, tables."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    """One line naming the machine the figures come from."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


class PortalProcess:
    """A FakePortal served by ``portal_server.py`` in a child process."""

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.process: asyncio.subprocess.Process | None = None
        self.webhook_url = ""
        self.template_id = 0

    async def _line(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        return dict(json.loads(await asyncio.wait_for(self.process.stdout.readline(), 60)))

    async def __aenter__(self) -> PortalProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "portal_server.py"),
            json.dumps(self.config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        info = await self._line()
        self.webhook_url, self.template_id = info["webhook_url"], info["template_id"]
        return self

    async def stats(self) -> dict[str, Any]:
        """The portal's counters (asked over its stdin/stdout)."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(b"stats\n")
        await self.process.stdin.drain()
        return await self._line()

    async def __aexit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 30)
