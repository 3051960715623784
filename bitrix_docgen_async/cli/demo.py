"""``bitrix-docgen demo``: bulk generation against the embedded fake portal, shown live.

It starts a :meth:`FakePortal.realistic` portal on 127.0.0.1 (real time, or 100 times
faster with ``--fast``), seeds a numerator and a template, generates one document for each of N
deals, waits for the PDFs, downloads them, and ends with a summary that sets the wall time
against the lower bound the portal's limits allow:

* requests: every HTTP request needs a token of the bucket, so R requests take at least
  ``(R - burst) / rate`` seconds;
* budget: N adds need ``N x cost`` seconds of ``document.add``'s operating budget, which refills
  at ``limit / window`` once the first ``limit`` seconds are spent;
* conversion: no PDF exists before the shortest conversion time.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import attrs

from bitrix_docgen_async.cli.errors import EXIT_FAILED, EXIT_OK, redact
from bitrix_docgen_async.cli.output import make_console, make_table
from bitrix_docgen_async.cli.presets import ADD, FAST, REALISTIC, Limits
from bitrix_docgen_async.cli.progress import LiveProgress, client_status, closing
from bitrix_docgen_async.client import DocgenClient
from bitrix_docgen_async.models import EntityType
from bitrix_docgen_async.workflows.bulk import GenerationResult

__all__ = ["LowerBound", "lower_bound", "run_demo"]

_STEPS = ("added", "converted", "downloaded")
#: At most this many failures are listed after the summary.
_SHOWN_FAILURES = 10


@attrs.frozen
class LowerBound:
    """The shortest time the portal's limits allow for a run (seconds), and its parts."""

    requests: float
    budget: float
    conversion: float

    @property
    def total(self) -> float:
        """The binding part."""
        return max(self.requests, self.budget, self.conversion)


def lower_bound(limits: Limits, requests: int, adds: int) -> LowerBound:
    """The lower bound of a run that sent ``requests`` HTTP requests and ``adds`` adds."""
    rate, budget = limits.rate_limit, limits.budget
    return LowerBound(
        requests=max(0.0, (requests - rate.burst) / rate.per_second),
        budget=max(
            0.0, (adds * limits.add_cost - budget.limit_s) / (budget.limit_s / budget.window_s)
        ),
        conversion=max(0.0, limits.pdf_delay - limits.pdf_jitter),
    )


def _is_pdf(path: Path | None) -> bool:
    if path is None:
        return False
    try:
        with path.open("rb") as file:
            return file.read(5) == b"%PDF-"
    except OSError:
        return False


def _values(entity_id: int) -> dict[str, str]:
    return {"Comment": f"Demo deal {entity_id}"}


async def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; 0 when every document got a valid PDF, 1 otherwise."""
    out, err = make_console(), make_console(stderr=True)
    limits = FAST if args.fast else REALISTIC
    count: int = args.count
    folder = Path(args.out)
    out.print(
        f"bitrix-docgen demo: {count} documents for {count} deals on an embedded fake portal\n"
        f"  {limits.describe()}\n  PDFs are saved to {folder}/",
        markup=False,
        soft_wrap=True,
    )
    results: list[GenerationResult] = []
    async with limits.portal(seed=1) as portal:
        numerator = portal.seed_numerator("Demo invoices", "DEMO-{NUMBER}")
        template = portal.seed_template("Demo invoice", numerator_id=numerator)
        async with DocgenClient.from_webhook(
            portal.webhook_url, **limits.client_options()
        ) as client:
            started = time.perf_counter()
            async with (
                LiveProgress(err, count, _STEPS, partial(client_status, client.stats)) as live,
                closing(
                    client.documents.generate_many(
                        template_id=template,
                        entity_type_id=EntityType.DEAL,
                        entity_ids=range(1, count + 1),
                        values=_values,
                        download_dir=folder,
                        on_progress=live.on_progress,
                    )
                ) as stream,
            ):
                async for result in stream:
                    results.append(result)
            wall = time.perf_counter() - started
            stats = client.stats
        seen = portal.stats
    valid = sum(_is_pdf(r.pdf_path) for r in results if r.ok)
    failed = [r for r in results if not r.ok]
    adds = seen.by_method[ADD]
    bound = lower_bound(limits, seen.requests, adds)
    rows: list[tuple[str, object]] = [
        ("documents generated", adds),
        ("PDFs saved (valid %PDF-)", f"{valid} of {count} in {folder}/"),
        ("failed", len(failed)),
        ("HTTP requests", seen.requests),
        ("requests per document", f"{seen.requests / max(1, count):.2f}"),
        ("batches / commands", f"{stats.batches} / {seen.commands}"),
        (
            "refused by the portal (503 / 429)",
            f"{seen.rejected_rate_limit} / {seen.rejected_operating}",
        ),
        ("limiter waits (summed over callers)", f"{stats.limiter_wait_s:.1f} s"),
        ("wall time", f"{wall:.1f} s"),
        (
            "portal's lower bound",
            f"{bound.total:.1f} s (requests {bound.requests:.1f} s, add budget "
            f"{bound.budget:.1f} s, conversion {bound.conversion:.1f} s)",
        ),
        ("wall / bound", f"{wall / bound.total:.2f}" if bound.total else "-"),
    ]
    out.print(make_table("Summary", ("", ""), rows, header=False))
    for result in failed[:_SHOWN_FAILURES]:
        err.print(
            f"deal {result.entity_id}: {redact(str(result.error))}", markup=False, soft_wrap=True
        )
    if len(failed) > _SHOWN_FAILURES:
        err.print(f"... and {len(failed) - _SHOWN_FAILURES} more failures")
    return EXIT_OK if valid == count and not failed else EXIT_FAILED
