"""Live progress on stderr: one bar per step (added, converted, downloaded) and a status line.

The display is redrawn by a task on the running loop a few times a second (no thread); the
bulk pipeline only updates counts through :meth:`LiveProgress.on_progress`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from bitrix_docgen_async.bulk import Progress
from bitrix_docgen_async.session import ClientStats

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live
    from rich.progress import Progress as Bars
    from rich.progress import TaskID

__all__ = ["LiveProgress", "client_status", "closing"]

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
