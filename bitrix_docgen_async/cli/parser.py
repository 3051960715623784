"""The ``bitrix-docgen`` argument parser (argparse; every mistake is one line, exit code 2)."""

from __future__ import annotations

import argparse
from typing import NoReturn

from bitrix_docgen_async._version import __version__
from bitrix_docgen_async.cli import commands, lists
from bitrix_docgen_async.cli.demo import run_demo
from bitrix_docgen_async.cli.emulator import add_emulator_arguments, limit_arguments, run_emulator
from bitrix_docgen_async.cli.errors import UsageError
from bitrix_docgen_async.cli.presets import PLANS
from bitrix_docgen_async.cli.ranges import entity_type, json_values, parse_ids
from bitrix_docgen_async.cli.workers import add_worker_commands

__all__ = ["build_parser"]

PROG = "bitrix-docgen"


class _Parser(argparse.ArgumentParser):
    """Reports a mistake as :class:`UsageError` (one line) instead of usage text and exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)", prog=self.prog)


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _count(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _port(text: str) -> int:
    port = _count(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return port


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return value


def _webhook_options() -> _Parser:
    shared = _Parser(add_help=False)
    group = shared.add_argument_group("portal")
    group.add_argument(
        "--webhook",
        metavar="URL",
        help=f"incoming webhook https://{{portal}}/rest/{{user}}/{{code}}/ "
        f"(default: ${commands.WEBHOOK_ENV}; prefer the variable: arguments show in ps)",
    )
    limits = shared.add_argument_group(
        "limits (stay under them: match the portal, or the emulator's flags)"
    )
    limits.add_argument(
        "--plan",
        choices=PLANS,
        default="standard",
        help="standard (bucket 50 at 2/s), enterprise (250 at 5/s), both with 480 s of "
        "execution per method per 600 s; fast: as 'emulator --fast' (50 at 200/s, 4.8 s per 6 s)",
    )
    limit_arguments(limits)
    return shared


def _add_demo(sub: argparse._SubParsersAction[_Parser]) -> None:
    demo = sub.add_parser("demo", help="bulk-generate documents on an embedded fake portal")
    demo.add_argument("-n", "--count", type=_positive_int, default=200, help="documents (200)")
    demo.add_argument("--fast", action="store_true", help="scaled limits: done in seconds")
    demo.add_argument("--out", default="docgen-demo", help="PDF folder (./docgen-demo)")
    demo.set_defaults(handler=run_demo, prog=demo.prog)


def _add_emulator(sub: argparse._SubParsersAction[_Parser]) -> None:
    emu = sub.add_parser(
        "emulator", help="serve the fake portal standalone (prints its webhook URL)"
    )
    emu.add_argument("--port", type=_port, default=0, help="port (default: a free one)")
    emu.add_argument("--host", default="127.0.0.1", help="address (127.0.0.1)")
    emu.add_argument("--webhook-code", help="a fixed webhook code (default: random)")
    add_emulator_arguments(emu)
    emu.set_defaults(handler=run_emulator, prog=emu.prog)


def _add_portal_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    portal = _webhook_options()
    gen = sub.add_parser("generate", parents=[portal], help="one document per CRM item")
    gen.add_argument("--template", type=_positive_int, required=True, metavar="ID")
    gen.add_argument(
        "--entity-type",
        type=entity_type,
        required=True,
        metavar="TYPE",
        help="deal, lead, contact, company, invoice, quote, smart_invoice or a number",
    )
    gen.add_argument("--ids", type=parse_ids, required=True, help="entity ids, e.g. 1-500,7,9")
    gen.add_argument(
        "--values",
        type=json_values,
        metavar="JSON",
        help='placeholder values for every document: {"Comment": "x"} or @file.json',
    )
    gen.add_argument(
        "--no-check-values",
        dest="check_values",
        action="store_false",
        help="send --values without checking their names against the template's fields",
    )
    gen.add_argument("--wait-pdf", action="store_true", help="wait for the PDFs")
    gen.add_argument("--out", metavar="DIR", help="save the PDFs there (implies --wait-pdf)")
    gen.add_argument(
        "--journal",
        metavar="FILE|URL",
        help="SQLite journal file, or redis://... for the journal shared by many processes "
        "and hosts: resume without duplicates",
    )
    gen.add_argument(
        "--run-id",
        metavar="NAME",
        help="the run's name in a redis:// journal (default: template-<id>-type-<id>)",
    )
    gen.add_argument(
        "--pdf-timeout", type=_seconds, default=600.0, metavar="S", help="per PDF (600)"
    )
    gen.add_argument(
        "--pdf-first-check",
        type=_seconds,
        metavar="S",
        help="first look for a PDF this long after creation (default: the plan's shortest "
        "conversion; 8 s, the documented minimum, on a real portal)",
    )
    gen.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per entity on stdout (the summary goes to stderr)",
    )
    gen.add_argument(
        "--give-up-after",
        type=_seconds,
        default=commands.GIVE_UP_AFTER,
        metavar="S",
        help="exit 3 when the portal has not answered for this long while requests fail "
        f"({commands.GIVE_UP_AFTER:g})",
    )
    gen.add_argument(
        "--progress-every",
        type=_seconds,
        default=commands.PROGRESS_EVERY,
        metavar="S",
        help="when stderr is not a terminal: a progress line every 5 %% and at least this "
        f"often ({commands.PROGRESS_EVERY:g})",
    )
    gen.set_defaults(handler=commands.generate, prog=gen.prog)

    wait = sub.add_parser("wait", parents=[portal], help="wait for documents' PDFs")
    wait.add_argument("--ids", type=parse_ids, required=True, help="document ids")
    wait.add_argument("--timeout", type=_seconds, default=300.0, metavar="S")
    wait.set_defaults(handler=commands.wait, prog=wait.prog)

    down = sub.add_parser("download", parents=[portal], help="download documents' files")
    down.add_argument("--ids", type=parse_ids, required=True, help="document ids")
    down.add_argument("--out", required=True, metavar="DIR")
    down.add_argument("--kind", choices=("pdf", "docx", "image"), default="pdf")
    down.set_defaults(handler=commands.download, prog=down.prog)

    for name, handler in (
        ("templates", lists.list_templates),
        ("numerators", lists.list_numerators),
    ):
        group = sub.add_parser(name, help=f"{name}: list")
        actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
        listing = actions.add_parser("list", parents=[portal], help=f"list the {name}")
        listing.set_defaults(handler=handler, prog=listing.prog)

    docs = sub.add_parser("documents", help="documents: list")
    actions = docs.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[portal], help="list documents, newest first")
    listing.add_argument("--entity-type", type=entity_type, metavar="TYPE")
    listing.add_argument("--entity-id", type=_positive_int, metavar="ID")
    listing.add_argument("--template", type=_positive_int, metavar="ID")
    listing.add_argument("--limit", type=_count, default=50, help="at most this many (0: all)")
    listing.set_defaults(handler=lists.list_documents, prog=listing.prog)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; ``handler`` and ``prog`` are set on the namespace."""
    parser = _Parser(
        prog=PROG,
        description="Bitrix24 CRM document generator: bulk generation, PDFs, and a fake portal.",
        epilog="Exit codes: 0 ok, 1 some items failed, 2 usage or configuration error, "
        "3 the portal unreachable (generate --give-up-after), 130 Ctrl-C, 143 SIGTERM.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(sub)
    _add_portal_commands(sub)
    _add_emulator(sub)
    add_worker_commands(sub)
    return parser
