"""generate_many + wait + download against a fake portal, wall time next to the limits' bound.

    python benchmarks/bulk.py                      # 2,000 entities, burst 50 / 10 per s
    python benchmarks/bulk.py --budget-bound       # 500 entities, add 0.2 s +- 0.05 s, 4.8 s / 6 s
    python benchmarks/bulk.py --budget-bound --billing method   # batches billed per command

``--billing`` picks how the fake portal bills a ``batch`` (docs/portal.md#how-batch-is-billed):
``batch`` (the default, as measured on a live portal: a whole batch request to ``batch``, a
direct call to its method, so two budgets can be spent) or ``method`` (each command to its own
method: one budget). The table prints docs/s against one budget's ceiling (limit / window /
mean cost) and against the combined ceiling of the budgets the model offers.

The lower bound ("bound s") is what the workload needs, whatever the client sends. N documents
are N adds (mean cost c), with PDFs also at least one poll each (``document.get``, batched, not
billed: it costs nothing here) and one download GET each (every HTTP request takes a token of
the portal's bucket; docs/portal.md#request-rate-leaky-bucket). Say x adds go direct and N - x
batched, 50 to a request (docs/portal.md#batch):

* requests: R(x) = x + ceil((N - x) / 50) [+ ceil(N / 50) polls + N downloads]. The bucket lets
  at most burst + rate x T requests through in T seconds, so T >= (R(x) - burst) / rate;
* budgets: a budget of L seconds per window W lets at most L + L x T / W seconds of execution
  through in T seconds (any window of W holds at most L), so spending S takes
  T >= (S - L) / (L / W). Under ``batch`` billing the batched adds spend ``batch``'s budget,
  S = (N - x) c, and the direct ones document.add's own, S = x c -- but not when c is under the
  portal's 0.1 s floor, where a direct add is not billed at all. Under ``method`` billing every
  add spends document.add's budget, S = N c, wherever it is sent;
* the bound is the smallest, over every split x, of the largest of these (printed with the x
  that reaches it). The requests the run happened to send play no part.
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
from bitrix_docgen_async.testing.billing import OPERATING_FLOOR_S

ADD = "crm.documentgenerator.document.add"


def lower_bound(
    args: argparse.Namespace, limit: RateLimit, budget: OperatingBudget
) -> tuple[float, float, float, int]:
    """The wall time the workload needs at least (see the module docstring).

    Returns:
        The bound, its request and budget parts, and the number of direct adds that reaches it.
    """
    n, cost = args.entities, args.add_cost
    fixed = 0 if args.no_pdf else math.ceil(n / MAX_BATCH) + n  # polls batched, downloads

    def budget_time(seconds: float) -> float:
        return max(0.0, (seconds - budget.limit_s) / (budget.limit_s / budget.window_s))

    best = (math.inf, 0.0, 0.0, 0)
    for direct in range(n + 1):
        requests = direct + math.ceil((n - direct) / MAX_BATCH) + fixed
        by_requests = max(0.0, (requests - limit.burst) / limit.per_second)
        if args.billing == "method":
            by_budget = budget_time(n * cost)
        else:
            billed_direct = direct * cost if cost >= OPERATING_FLOOR_S else 0.0
            by_budget = max(budget_time((n - direct) * cost), budget_time(billed_direct))
        candidate = (max(by_requests, by_budget), by_requests, by_budget, direct)
        if candidate[0] < best[0]:
            best = candidate
    return best


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
    bound, request_bound, budget_bound, split = lower_bound(args, limit, budget)
    mean_cost = args.add_cost
    # Two budgets under "batch" billing (``batch`` and document.add's own), one under "method".
    budgets = 2 if args.billing == "batch" else 1
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
                "bound s (requests / budget; direct adds)",
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
                    f"{bound:.1f} ({request_bound:.1f} / {budget_bound:.1f}; {split})",
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
