"""``bitrix-docgen emulator``: the fake portal standalone, for tests written in other languages.

It serves a :meth:`FakePortal.realistic` portal (real time, or ``--scale``/``--fast`` times
faster) until Ctrl-C or SIGTERM. Flags override single figures: ``--rate``/``--burst`` (the
request bucket), ``--budget``/``--window`` (the operating budget), ``--billing batch|method``
(where a ``batch`` is billed: to ``batch``, as a live portal was measured to, or to each
command's method, as documented; docs/portal.md#how-batch-is-billed), ``--pdf-delay``,
``--pdf-jitter``, ``--pdf-failure-rate``, ``--fault KIND=RATE`` (injected failures, see
:class:`Faults`) and ``--tokenless-events``. ``--seed demo`` stores a numerator, a template and
numbered documents first (5, or ``--documents N``).

Events (docs/portal.md#offline-events): the offline queue is on, with the confirm mode and
``auth_connector``; ``--no-offline-confirm`` and ``--no-auth-connector`` turn those features off
(``feature.get`` answers ``N``, a ``clear=0`` is ignored). ``--install-handler URL`` posts
``ONAPPINSTALL`` with a fresh application token to ``URL`` at start, and again on each
``SIGUSR1`` (docs/portal.md#installation-and-many-portals); with ``--json`` each install prints
a line ``{"installed": {"handler", "application_token", "member_id"}}``.

Plain output: the webhook URL as the first line of stdout, then, with ``--seed``, the ids of
what was stored. With ``--json``: one JSON line holding the webhook URL and the OAuth
application's credentials -- client id and secret, an access and a refresh token, an
authorization code (valid 30 s, once), the application token that signs events -- and the
seeded ids. These are the emulator's own fake credentials, valid only on this emulator, so
printing them on request is the point; nothing else prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from collections.abc import Callable
from typing import Any

import attrs

from bitrix_docgen_async.cli.errors import EXIT_OK, UsageError
from bitrix_docgen_async.cli.presets import FAST_SCALE, Limits
from bitrix_docgen_async.testing import FAULT_KINDS, FakePortal, Faults
from bitrix_docgen_async.testing.billing import BILLING_MODELS, billing_model

__all__ = ["add_emulator_arguments", "limit_arguments", "run_emulator"]

#: Documents ``--seed demo`` creates (for deals 1..N) unless ``--documents`` says otherwise.
SEEDED_DOCUMENTS = 5
_CODE = re.compile(r"[A-Za-z0-9]{1,64}")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _share(text: str) -> float:
    value = _non_negative(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, got {text!r}")
    return value


def _whole(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _fault(text: str) -> tuple[str, float]:
    kind, sep, rate = text.partition("=")
    if not sep or kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(
            f"expected KIND=RATE with KIND one of {', '.join(FAULT_KINDS)}, got {text!r}"
        )
    return kind, _share(rate)


def limit_arguments(group: argparse._ActionsContainer) -> None:
    """``--rate``/``--burst``/``--budget``/``--window``: single figures of the limits (shared
    by the emulator, which serves them, and the portal commands, which stay under them)."""
    group.add_argument("--rate", type=_positive, metavar="R", help="requests drained per second")
    group.add_argument("--burst", type=_whole, metavar="N", help="request bucket size")
    group.add_argument("--budget", type=_positive, metavar="S", help="operating seconds/window")
    group.add_argument("--window", type=_positive, metavar="S", help="operating window, seconds")


def add_emulator_arguments(emu: argparse.ArgumentParser) -> None:
    """The emulator's output, data and limit options (:mod:`.parser` adds the address ones)."""
    emu.add_argument(
        "--json", action="store_true", help="print one JSON line: webhook URL, OAuth credentials"
    )
    data = emu.add_argument_group("data")
    data.add_argument(
        "--seed", choices=("demo",), help="store a numerator, a template and numbered documents"
    )
    data.add_argument(
        "--documents",
        type=_whole,
        metavar="N",
        help=f"documents --seed demo creates, for deals 1..N ({SEEDED_DOCUMENTS}); implies it",
    )
    limits = emu.add_argument_group("limits (default: the documented ones, in real time)")
    limits.add_argument(
        "--scale", type=_positive, default=1.0, help="run this many times faster (1)"
    )
    limits.add_argument(
        "--fast", action="store_true", help=f"same as --scale {FAST_SCALE:g} (as demo --fast)"
    )
    limit_arguments(limits)
    limits.add_argument(
        "--billing",
        choices=BILLING_MODELS,
        default=BILLING_MODELS[0],
        help="bill a batch to `batch` (measured, the default) or per command (documented)",
    )
    limits.add_argument("--pdf-delay", type=_non_negative, metavar="S", help="seconds to a PDF")
    limits.add_argument(
        "--pdf-jitter", type=_non_negative, metavar="S", help="± seconds (0 with --pdf-delay)"
    )
    limits.add_argument("--pdf-failure-rate", type=_share, metavar="R", help="share failing")
    limits.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="KIND=RATE",
        help=f"inject a failure into a share of requests; KIND: {', '.join(FAULT_KINDS)}",
    )
    events = emu.add_argument_group("events")
    events.add_argument(
        "--no-offline-confirm",
        action="store_true",
        help="no confirm mode for offline events (feature rest_offline_extended off)",
    )
    events.add_argument(
        "--no-auth-connector",
        action="store_true",
        help="no auth_connector for offline events (feature rest_auth_connector off)",
    )
    events.add_argument(
        "--install-handler",
        metavar="URL",
        help="post ONAPPINSTALL (a fresh application token) here at start and on SIGUSR1",
    )
    limits.add_argument(
        "--tokenless-events",
        type=_share,
        default=0.0,
        metavar="R",
        help="share of event POSTs without auth[access_token]",
    )


def limits_from(args: argparse.Namespace) -> Limits:
    """The realistic limits at the requested scale, with the flags' overrides."""
    scale = FAST_SCALE if args.fast else args.scale
    limits = Limits.scaled("fast" if args.fast else "realistic", scale)
    if args.pdf_delay is not None:
        limits = attrs.evolve(limits, pdf_delay=args.pdf_delay, pdf_jitter=0.0)
    if args.pdf_jitter is not None:
        limits = attrs.evolve(limits, pdf_jitter=min(args.pdf_jitter, limits.pdf_delay))
    limits = limits.overridden(
        rate=args.rate, burst=args.burst, budget=args.budget, window=args.window
    )
    return attrs.evolve(
        limits,
        pdf_failure_rate=args.pdf_failure_rate or 0.0,
        billing=billing_model(args.billing),
    )


def _faults(args: argparse.Namespace) -> Faults:
    rates = dict(args.fault)
    try:
        return Faults(seed=1, **rates)
    except ValueError as exc:
        raise UsageError(f"--fault: {exc}", prog=args.prog) from None


def _seed_demo(portal: FakePortal, count: int) -> dict[str, Any]:
    numerator = portal.seed_numerator("Demo invoices", "DEMO-{NUMBER}")
    template = portal.seed_template("Demo invoice", numerator_id=numerator)
    documents = [
        portal.seed_document(template, 2, deal, {"Comment": f"Demo deal {deal}"})
        for deal in range(1, count + 1)
    ]
    return {
        "numerator_id": numerator,
        "template_id": template,
        "document_ids": documents,
        "entity_type_id": 2,
        "entity_ids": list(range(1, count + 1)),
    }


def _plain_seed(seeded: dict[str, Any]) -> str:
    return (
        f"numerator_id={seeded['numerator_id']} template_id={seeded['template_id']} "
        f"document_ids={','.join(map(str, seeded['document_ids']))} "
        f"entity_type_id={seeded['entity_type_id']} entity_ids=1-{len(seeded['entity_ids'])}"
    )


def _json_line(portal: FakePortal, limits: Limits, seeded: dict[str, Any] | None) -> str:
    creds = portal.oauth
    rate, budget = limits.rate_limit, limits.budget
    return json.dumps(
        {
            "webhook_url": portal.webhook_url,
            "base_url": portal.base_url,
            "client_endpoint": creds.client_endpoint,
            "oauth_url": creds.oauth_url,
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "access_token": creds.access_token,
            "refresh_token": creds.refresh_token,
            "authorization_code": portal.issue_authorization_code(),
            "application_token": creds.application_token,
            "member_id": creds.member_id,
            "limits": {
                "scale": limits.scale,
                "burst": rate.burst,
                "rate": rate.per_second,
                "budget": budget.limit_s,
                "window": budget.window_s,
                "pdf_delay": limits.pdf_delay,
                "pdf_jitter": limits.pdf_jitter,
                "pdf_failure_rate": limits.pdf_failure_rate,
                "billing": limits.billing,
            },
            "seed": seeded,
        }
    )


def _installer(portal: FakePortal, handler: str, *, json_lines: bool) -> Callable[[], None]:
    """Post ``ONAPPINSTALL`` (a fresh application token) to ``handler``; print it with --json."""

    def install() -> None:
        token = portal.install_app(handler)
        if json_lines:
            line = {"handler": handler, "application_token": token}
            line["member_id"] = portal.oauth.member_id
            print(json.dumps({"installed": line}), flush=True)

    return install


async def run_emulator(args: argparse.Namespace) -> int:
    """Serve until cancelled (the runner cancels on Ctrl-C or SIGTERM); returns 0."""
    if args.webhook_code is not None and not _CODE.fullmatch(args.webhook_code):
        raise UsageError("--webhook-code must be 1 to 64 letters or digits", prog=args.prog)
    limits = limits_from(args)
    portal = limits.portal(
        host=args.host,
        port=args.port,
        faults=_faults(args),
        tokenless_events=args.tokenless_events,
        seed=1,
        features={
            "rest_offline_extended": not args.no_offline_confirm,
            "rest_auth_connector": not args.no_auth_connector,
        },
    )
    if args.webhook_code is not None:
        portal.webhook_code = args.webhook_code
    try:
        await portal.start()
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", prog=args.prog
        ) from None
    try:
        seeded = None
        if args.seed == "demo" or args.documents is not None:
            seeded = _seed_demo(portal, args.documents or SEEDED_DOCUMENTS)
        if args.json:
            print(_json_line(portal, limits, seeded), flush=True)
        else:
            print(portal.webhook_url, flush=True)
            if seeded is not None:
                print(_plain_seed(seeded), flush=True)
        print(
            f"bitrix-docgen emulator: fake Bitrix24 portal on {portal.base_url} "
            f"({limits.describe()}); stop it with Ctrl-C or SIGTERM",
            file=sys.stderr,
            flush=True,
        )
        if args.install_handler:
            install = _installer(portal, args.install_handler, json_lines=args.json)
            install()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGUSR1, install)
        await asyncio.Event().wait()
    finally:
        if args.install_handler:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
        await portal.close()
    return EXIT_OK
