"""Progress on stderr: live bars on a terminal, plain lines otherwise.

On a terminal, one bar per step (added, converted, downloaded) and a status line, redrawn by a
task on the running loop a few times a second (no thread); the bulk pipeline only updates
counts through :meth:`LiveProgress.on_progress`. When stderr is a file or a pipe (a cron job,
a CI log), :class:`PlainProgress` prints one plain line every 5 % and at least every few
seconds instead, so that a log shows how far an unattended run got.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from bitrix_docgen_async.session import ClientStats
from bitrix_docgen_async.workflows.bulk import Progress

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live
    from rich.progress import Progress as Bars
    from rich.progress import TaskID

__all__ = ["LiveProgress", "PlainProgress", "client_status", "closing", "format_duration"]

T = TypeVar("T")


@contextlib.asynccontextmanager
async def closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close an async generator (``aclose``) on the way out, however the loop over it ends."""
    try:
        yield stream
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


def client_status(stats: ClientStats) -> str:
    """The client's counters in one line."""
    return (
        f"HTTP requests {stats.http_requests} ({stats.batches} batches, {stats.downloads} "
        f"downloads) · limiter waits {stats.limiter_wait_s:.1f} s · retries {stats.retries} · "
        f"refused (503/429) {stats.rate_limited}"
    )


class LiveProgress:
    """Bars for ``steps`` out of ``total`` and a status line, shown while inside ``async with``.

    Args:
        console: where to draw (stderr).
        total: how many items each bar counts to.
        steps: the bars' labels, e.g. ``("added", "converted", "downloaded")``.
        status: called at every redraw for the line under the bars.
        period: seconds between redraws.
    """

    def __init__(
        self,
        console: Console,
        total: int,
        steps: Sequence[str],
        status: Callable[[], str],
        *,
        period: float = 0.2,
    ) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as Bars

        self._console = console
        self._status = status
        self._period = period
        self._bars: Bars = Bars(
            TextColumn("{task.description:>10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            auto_refresh=False,
        )
        self._tasks: dict[str, TaskID] = {
            step: self._bars.add_task(step, total=total) for step in steps
        }
        self._live: Live | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.failed = 0
        self.skipped = 0

    def set(self, **done: int) -> None:
        """Set how many items each named step has finished."""
        for step, count in done.items():
            task = self._tasks.get(step)
            if task is not None:
                self._bars.update(task, completed=count)

    def on_progress(self, progress: Progress) -> None:
        """A ``generate_many`` ``on_progress`` callback (skipped items count as done)."""
        skipped = progress.skipped
        self.failed, self.skipped = progress.failed, skipped
        self.set(
            added=progress.added + skipped,
            converted=progress.ready + skipped,
            downloaded=progress.downloaded + skipped,
        )

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        line = self._status()
        if self.failed or self.skipped:
            line = f"failed {self.failed} · skipped {self.skipped} · {line}"
        return Group(self._bars.get_renderable(), Text(line, style="dim"))

    async def _tick(self) -> None:
        while self._live is not None:
            self._live.refresh()
            await asyncio.sleep(self._period)

    async def __aenter__(self) -> LiveProgress:
        from rich.live import Live

        self._live = Live(
            console=self._console,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
            get_renderable=self._render,
        )
        self._live.start()
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        live, self._live = self._live, None
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        if live is not None:
            live.stop()  # draws the final state (the only one when not on a terminal)
            if not self._console.is_terminal:
                self._console.line()  # rich ends that last drawing without a newline


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s`` or ``2 h 07 min``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole // 60 % 60:02d} min"


class PlainProgress:
    """Plain progress lines for a stream that is not a terminal.

    A line is printed each time another 5 % of the entities is done, at least every
    ``every`` seconds while the run lasts (a stalled run shows it is alive), and once at the
    end::

        progress: 120/500 (24%) · done 118 · failed 2 · added 130 · 3.1/s · ETA 2 min 03 s · ...

    Args:
        console: where to print (stderr).
        total: entities in the run.
        status: called for each line's tail (the client's counters).
        every: seconds between lines when fewer than 5 % got done in between.
    """

    #: A line each time this share of the entities got done.
    STEP = 0.05

    def __init__(
        self, console: Console, total: int, status: Callable[[], str], *, every: float
    ) -> None:
        self._console = console
        self._total = total
        self._status = status
        self._every = every
        self._started = time.monotonic()
        self._last_line = self._started
        self._steps_shown = 0
        self._ticker: asyncio.Task[None] | None = None
        self.done = 0
        self.failed = 0
        self.added = 0

    def on_progress(self, progress: Progress) -> None:
        """A ``generate_many`` ``on_progress`` callback (skipped items count as added)."""
        self.added = progress.added + progress.skipped

    def update(self, done: int, failed: int) -> None:
        """``done`` entities finished (``failed`` of them failed): a line per 5 % step."""
        self.done, self.failed = done, failed
        steps = int(done / max(1, self._total) / self.STEP + 1e-9)
        if steps > self._steps_shown:
            self._steps_shown = steps
            self.print_line()

    def line(self) -> str:
        """The current line."""
        elapsed = max(1e-9, time.monotonic() - self._started)
        rate = self.done / elapsed
        left = self._total - self.done
        if left == 0:
            eta = "ETA 0 s"
        elif rate > 0:
            eta = f"ETA {format_duration(left / rate)}"
        else:
            eta = "ETA unknown"
        share = self.done / max(1, self._total)
        return (
            f"progress: {self.done}/{self._total} ({share:.0%}) · done {self.done - self.failed}"
            f" · failed {self.failed} · added {self.added} · {rate:.1f}/s · {eta} · "
            f"elapsed {format_duration(elapsed)} · {self._status()}"
        )

    def print_line(self) -> None:
        """Print the current line now."""
        self._last_line = time.monotonic()
        self._console.print(self.line(), markup=False, soft_wrap=True, highlight=False)

    async def _tick(self) -> None:
        while True:
            due = self._last_line + self._every - time.monotonic()
            if due > 0:
                await asyncio.sleep(due)
                continue
            self.print_line()

    async def __aenter__(self) -> PlainProgress:
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        if self.done < self._total or self._steps_shown == 0:
            self.print_line()  # where the run stopped (or the only line of a short run)
