"""generate_many + wait + download against a fake portal, wall time next to the limits' bound.

    python benchmarks/bulk.py                      # 2,000 entities, burst 50 / 10 per s
    python benchmarks/bulk.py --budget-bound       # 500 entities, add 0.2 s +- 0.05 s, 4.8 s / 6 s
    python benchmarks/bulk.py --budget-bound --billing method   # batches billed per command

The lower bound: every HTTP request needs a token of the portal's bucket, so N requests take at
least (N - burst) / rate seconds; every add needs its execution time out of the operating
budget, so A adds take at least (A x mean cost - limit) / (limit / window) seconds. The
request bound counts the fewest requests the workload needs (adds in full batches of 50, one
poll and one GET per document), not the requests the run happened to send.

``--billing`` picks how the fake portal bills a ``batch`` (docs/portal.md#how-batch-is-billed):
``batch`` (the default, as measured on a live portal: a whole batch request to ``batch``, a
direct call to its method, so two budgets can be spent) or ``method`` (each command to its own
method: one budget). The table prints docs/s against one budget's ceiling (limit / window /
mean cost) and against the combined ceiling of the budgets the model offers.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import tempfile
import time

from common import machine, table

from bitrix_docgen_async import DocgenClient, OperatingBudget, RateLimit
from bitrix_docgen_async.core.pdf import PollSchedule
from bitrix_docgen_async.core.planner import MAX_BATCH
from bitrix_docgen_async.testing import FakePortal

ADD = "crm.documentgenerator.document.add"


async def bulk(args: argparse.Namespace) -> None:
    limit = RateLimit(burst=args.burst, per_second=args.rate)
    budget = OperatingBudget(limit_s=args.limit, window_s=args.window)
    out = tempfile.mkdtemp(prefix="docgen-bench-")
    async with FakePortal(
        rate_limit=limit,
        operating_budget=budget,
        method_costs={ADD: args.add_cost},
        cost_jitter=args.add_jitter,
        pdf_delay=args.pdf_delay,
        pdf_jitter=args.pdf_delay / 4,
        seed=1,
        operating_billing=args.billing,
    ) as portal:
        template = portal.seed_template()
        schedule = PollSchedule(min_conversion=args.pdf_delay, interval=max(0.5, args.pdf_delay))
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=limit, operating_budget=budget, pdf_schedule=schedule
        ) as client:
            started = time.perf_counter()
            results = [
                r
                async for r in client.documents.generate_many(
                    template_id=template,
                    entity_type_id=2,
                    entity_ids=range(1, args.entities + 1),
                    wait_pdf=not args.no_pdf,
                    download_dir=None if args.no_pdf else out,
                    max_in_flight=args.in_flight,
                )
            ]
            wall = time.perf_counter() - started
        stats = portal.stats
        ok = sum(r.ok for r in results)
        identical = sum(
            1
            for r in results
            if r.pdf_path
            and r.document
            and r.pdf_path.read_bytes() == portal.document_file(r.document.id, "pdf")
        )
    shutil.rmtree(out, ignore_errors=True)
    # The fewest requests the workload needs: adds in full batches, and with PDFs one poll
    # (batched) and one download GET per document.
    needed = math.ceil(args.entities / MAX_BATCH)
    if not args.no_pdf:
        needed += math.ceil(args.entities / MAX_BATCH) + args.entities
    request_bound = max(0.0, (needed - limit.burst) / limit.per_second)
    mean_cost = args.add_cost
    # Two budgets under "batch" billing (``batch`` and document.add's own), one under "method".
    budgets = 2 if args.billing == "batch" else 1
    budget_bound = max(
        0.0,
        (args.entities * mean_cost - budgets * budget.limit_s)
        / (budgets * budget.limit_s / budget.window_s),
    )
    bound = max(request_bound, budget_bound)
    one_ceiling = budget.limit_s / budget.window_s / mean_cost
    rate = ok / wall
    spent = client.stats
    print(f"machine: {machine()}")
    print(
        table(
            [
                "billing",
                "entities",
                "ok",
                "PDFs identical",
                "HTTP requests",
                "req/doc",
                "503",
                "429",
                "wall s",
                "bound s (requests / budget)",
                "wall / bound",
                "docs/s",
                "one budget docs/s",
                "x one",
                "combined docs/s",
                "x combined",
                "direct / batched",
            ],
            [
                [
                    args.billing,
                    args.entities,
                    ok,
                    identical,
                    stats.requests,
                    f"{stats.requests / args.entities:.2f}",
                    stats.rejected_rate_limit,
                    stats.rejected_operating,
                    f"{wall:.1f}",
                    f"{bound:.1f} ({request_bound:.1f} / {budget_bound:.1f})",
                    f"{wall / bound:.2f}" if bound else "-",
                    f"{rate:.2f}",
                    f"{one_ceiling:.2f}",
                    f"{rate / one_ceiling:.2f}",
                    f"{budgets * one_ceiling:.2f}",
                    f"{rate / (budgets * one_ceiling):.2f}",
                    f"{spent.direct_commands} / {spent.batched_commands}",
                ]
            ],
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--pdf-delay", type=float, default=1.0)
    parser.add_argument("--add-cost", type=float, default=0.05)
    parser.add_argument("--add-jitter", type=float, default=0.01)
    parser.add_argument("--limit", type=float, default=4.8, help="operating budget, s")
    parser.add_argument("--window", type=float, default=6.0, help="budget window, s")
    parser.add_argument("--in-flight", type=int, default=300)
    parser.add_argument("--no-pdf", action="store_true", help="adds only")
    parser.add_argument(
        "--billing",
        choices=("batch", "method"),
        default="batch",
        help="how the fake portal bills a batch (default: batch, as measured)",
    )
    parser.add_argument(
        "--budget-bound",
        action="store_true",
        help="500 entities, add 0.2 +- 0.05 s, no PDFs (the budget binds)",
    )
    options = parser.parse_args()
    if options.budget_bound:
        options.entities, options.add_cost, options.add_jitter = 500, 0.2, 0.05
        options.no_pdf, options.rate = True, 10.0
    asyncio.run(bulk(options))
