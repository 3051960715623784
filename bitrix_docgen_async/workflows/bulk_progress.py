"""``generate_many``'s progress: counters, and the snapshots handed to ``on_progress``.

Counters change on every state change of every entity (three or four per entity), so they are
plain integers; ``on_progress`` gets a :class:`Progress` snapshot from a reporter task at most
every ``_PROGRESS_INTERVAL`` seconds, and once at the end of the run.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable

import attrs

__all__ = ["Counts", "Progress", "ProgressCallback", "Reporter"]

log = logging.getLogger("bitrix_docgen_async.workflows.bulk")

#: Seconds between two ``on_progress`` calls (at most a few per second).
_PROGRESS_INTERVAL = 0.25


@attrs.frozen
class Progress:
    """A snapshot of a run handed to ``on_progress`` (a few times per second at most).

    Attributes:
        added: documents created or found for this run.
        ready: PDFs ready.
        downloaded: PDFs saved.
        failed: entities that ended with an error.
        skipped: entities done by an earlier run (journal).
        total: how many entities the input holds, when it has a length.
        done: entities finished without error (skipped ones included).
        rate: entities finished (with or without error) per second so far.
        eta: seconds until every entity is finished at that rate (needs ``total``).
        elapsed: seconds since the run began.
    """

    added: int = 0
    ready: int = 0
    downloaded: int = 0
    failed: int = 0
    skipped: int = 0
    total: int | None = None
    done: int = 0
    rate: float = 0.0
    eta: float | None = None
    elapsed: float = 0.0


ProgressCallback = Callable[[Progress], None] | Callable[[Progress], Awaitable[None]]


class Counts:
    """A run's counters; cheap to update on every state change."""

    __slots__ = ("added", "done", "downloaded", "failed", "ready", "skipped")

    def __init__(self) -> None:
        self.added = self.ready = self.downloaded = self.failed = self.skipped = self.done = 0


class Reporter:
    """Calls ``on_progress`` (sync or async) at most every ``_PROGRESS_INTERVAL`` seconds."""

    def __init__(self, callback: ProgressCallback, counts: Counts, total: int | None) -> None:
        self._callback = callback
        self._counts = counts
        self._total = total
        self._started = time.monotonic()
        self._last: tuple[int, ...] | None = None
        self._task: asyncio.Task[None] | None = None

    def snapshot(self) -> Progress:
        c = self._counts
        elapsed = time.monotonic() - self._started
        finished = c.done + c.failed
        rate = finished / elapsed if elapsed > 0 else 0.0
        eta = None
        if self._total is not None and rate > 0:
            eta = max(0, self._total - finished) / rate
        return Progress(
            added=c.added,
            ready=c.ready,
            downloaded=c.downloaded,
            failed=c.failed,
            skipped=c.skipped,
            total=self._total,
            done=c.done,
            rate=rate,
            eta=eta,
            elapsed=elapsed,
        )

    async def report(self, *, force: bool = False) -> None:
        c = self._counts
        key = (c.added, c.ready, c.downloaded, c.failed, c.skipped, c.done)
        if key == self._last and not force:
            return
        self._last = key
        try:
            produced = self._callback(self.snapshot())
            if inspect.isawaitable(produced):
                await produced
        except Exception:
            log.exception("on_progress raised; ignored")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(_PROGRESS_INTERVAL)
            await self.report()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def stop(self) -> asyncio.Task[None] | None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        return task
