"""``main()``: parse, run the command on an event loop, map outcomes to exit codes.

Ctrl-C and SIGTERM cancel the running command, which unwinds through its ``async with`` blocks
(a bulk run closes its pipeline and its journal), then the process exits with 130 or 143. The
emulator treats them as its normal stop and exits with 0.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bitrix_docgen_async.cli.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_USAGE,
    CommandError,
    UsageError,
    redact,
)
from bitrix_docgen_async.cli.parser import PROG, build_parser
from bitrix_docgen_async.errors import AuthError, BitrixError
from bitrix_docgen_async.limiter import Clock, Sleep

__all__ = ["main", "run"]

Command = Callable[[], Awaitable[int]]


def _say(prog: str, message: str) -> None:
    print(f"{prog}: error: {redact(message)}", file=sys.stderr, flush=True)


def main(
    argv: Sequence[str] | None = None,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> int:
    """Run ``bitrix-docgen`` with ``argv`` (default: the process's arguments).

    Args:
        argv: the arguments after the program name.
        clock, sleep: what ``generate --give-up-after`` measures and waits with (injected in
            tests, so that giving up needs no real waiting).

    Returns:
        The exit code: 0 ok, 1 some items (or the run) failed, 2 usage or configuration error
        (including a missing webhook, refused credentials, an unwritable ``--out`` or a
        missing ``rich``), 3 the portal unreachable for ``--give-up-after`` seconds, 130/143
        interrupted by SIGINT/SIGTERM.
    """
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        _say(exc.prog, str(exc))
        return EXIT_USAGE
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    args.clock, args.sleep = clock, sleep
    prog: str = args.prog
    handler: Callable[[Any], Awaitable[int]] = args.handler
    try:
        return run(lambda: handler(args), stop_ok=args.command == "emulator")
    except UsageError as exc:
        _say(exc.prog, str(exc))
        return EXIT_USAGE
    except AuthError as exc:
        _say(prog, f"the portal refused the webhook: {exc}")
        return EXIT_USAGE
    except (BitrixError, CommandError, OSError) as exc:
        _say(prog, str(exc) or type(exc).__name__)
        return EXIT_FAILED
    except KeyboardInterrupt:  # a platform without loop signal handlers
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_SIGINT


def run(command: Command, *, stop_ok: bool = False) -> int:
    """Run ``command()`` on a new event loop; Ctrl-C/SIGTERM cancel it.

    Args:
        command: makes the coroutine to run; it returns the exit code.
        stop_ok: a signal is the normal way to stop (exit 0, nothing printed).
    """
    return asyncio.run(_supervise(command, stop_ok))


async def _supervise(command: Command, stop_ok: bool) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None, "runs as the main task of asyncio.run"
    received: list[int] = []

    def stop(signum: int) -> None:
        if not received:
            task.cancel()
        received.append(signum)

    installed = _install(loop, stop)
    try:
        return await command()
    except asyncio.CancelledError:
        if not received:
            raise
        task.uncancel()
        if stop_ok:
            return EXIT_OK
        name = signal.Signals(received[0]).name
        print(f"{PROG}: interrupted ({name})", file=sys.stderr, flush=True)
        return 128 + received[0]
    finally:
        _uninstall(loop, installed)


def _install(loop: asyncio.AbstractEventLoop, stop: Callable[[int], None]) -> list[tuple[int, Any]]:
    """Route SIGINT and SIGTERM to ``stop``; returns what to restore (nothing off the main
    thread or where the loop has no signal support)."""
    installed: list[tuple[int, Any]] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)
        try:
            loop.add_signal_handler(signum, stop, int(signum))
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append((int(signum), previous))
    return installed


def _uninstall(loop: asyncio.AbstractEventLoop, installed: list[tuple[int, Any]]) -> None:
    for signum, previous in installed:
        loop.remove_signal_handler(signum)
        if previous is not None:
            signal.signal(signum, previous)
