"""Helpers shared by the benchmark scripts: a portal in another process, RSS, tables."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import subprocess
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
        self.process: subprocess.Popen[str] | None = None
        self.webhook_url = ""
        self.template_id = 0

    async def __aenter__(self) -> PortalProcess:
        self.process = subprocess.Popen(  # noqa: S603 - our own script
            [sys.executable, str(HERE / "portal_server.py"), json.dumps(self.config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = await asyncio.to_thread(self.process.stdout.readline)
        info = json.loads(line)
        self.webhook_url, self.template_id = info["webhook_url"], info["template_id"]
        return self

    async def stats(self) -> dict[str, Any]:
        """The portal's counters (asked over its stdin/stdout)."""
        assert self.process and self.process.stdin and self.process.stdout
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        return dict(json.loads(await asyncio.to_thread(self.process.stdout.readline)))

    async def __aexit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            await asyncio.to_thread(self.process.wait, 30)
