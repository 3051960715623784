"""Console output through rich, imported lazily: the library itself never needs it.

Results (tables) go to stdout, live progress and diagnostics to stderr. When a stream is not a
terminal, rich prints no colours and no animation, only the final state.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from bitrix_docgen_async.cli.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["INSTALL_HINT", "make_console", "make_table", "require_rich"]

INSTALL_HINT = "this command needs rich: pip install 'bitrix_docgen_async[cli]'"
#: Width of tables written to a file or a pipe (rich would assume 80 columns and cut cells).
_PIPE_WIDTH = 120


def require_rich() -> None:
    """Fail with one line naming the extra to install when rich is missing.

    Raises:
        UsageError: rich cannot be imported.
    """
    try:
        import rich  # noqa: F401 - optional dependency, imported on use
    except ImportError:
        raise UsageError(INSTALL_HINT) from None


def make_console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr), sized for pipes when it is not a terminal."""
    require_rich()
    from rich.console import Console

    stream: TextIO = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty():
        width = int(os.environ.get("COLUMNS", "") or _PIPE_WIDTH)
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def make_table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    header: bool = True,
) -> Table:
    """A table whose numeric columns are right-aligned (``header=False``: a key-value list)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", show_header=header)
    for index, name in enumerate(columns):
        numeric = bool(rows) and all(_numeric(row[index]) for row in rows)
        table.add_column(name, justify="right" if numeric else "left")
    for row in rows:
        # Text, not str: a cell is data (a name, an error), never console markup.
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    return table


def _numeric(cell: Any) -> bool:
    return isinstance(cell, int | float) and not isinstance(cell, bool)
