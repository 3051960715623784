"""``bitrix-docgen emulator``: the fake portal standalone, for tests written in other languages.

It prints the webhook URL as the first line of stdout (it is a local fake, so its code is no
secret), then serves until Ctrl-C or SIGTERM. ``--seed demo`` stores a numerator, a template
and a few documents first, and prints their ids on a second line.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys

from bitrix_docgen_async.cli.errors import EXIT_OK, UsageError
from bitrix_docgen_async.cli.presets import FAST, REALISTIC
from bitrix_docgen_async.testing import FakePortal

__all__ = ["run_emulator"]

#: Documents ``--seed demo`` creates (for deals 1..N).
SEEDED_DOCUMENTS = 5
_CODE = re.compile(r"[A-Za-z0-9]{1,64}")


def _seed_demo(portal: FakePortal) -> str:
    numerator = portal.seed_numerator("Demo invoices", "DEMO-{NUMBER}")
    template = portal.seed_template("Demo invoice", numerator_id=numerator)
    documents = [
        portal.seed_document(template, 2, deal, {"Comment": f"Demo deal {deal}"})
        for deal in range(1, SEEDED_DOCUMENTS + 1)
    ]
    return (
        f"numerator_id={numerator} template_id={template} "
        f"document_ids={','.join(map(str, documents))} entity_type_id=2 "
        f"entity_ids=1-{SEEDED_DOCUMENTS}"
    )


async def run_emulator(args: argparse.Namespace) -> int:
    """Serve until cancelled (the runner cancels on Ctrl-C or SIGTERM); returns 0."""
    if args.webhook_code is not None and not _CODE.fullmatch(args.webhook_code):
        raise UsageError("--webhook-code must be 1 to 64 letters or digits", prog=args.prog)
    limits = FAST if args.fast else REALISTIC
    portal = FakePortal(host=args.host, port=args.port, **limits.portal_options())
    if args.webhook_code is not None:
        portal.webhook_code = args.webhook_code
    try:
        await portal.start()
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", prog=args.prog
        ) from None
    try:
        print(portal.webhook_url, flush=True)
        if args.seed == "demo":
            print(_seed_demo(portal), flush=True)
        print(
            f"bitrix-docgen emulator: fake Bitrix24 portal on {portal.base_url} "
            f"({limits.describe()}); stop it with Ctrl-C or SIGTERM",
            file=sys.stderr,
            flush=True,
        )
        await asyncio.Event().wait()
    finally:
        await portal.close()
    return EXIT_OK
