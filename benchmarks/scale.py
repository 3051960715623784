"""Client CPU per entity of generate_many as the run grows: it must not grow with the run.

    python benchmarks/scale.py                     # adds 1k/10k/100k, add+wait+download 1k/10k
    python benchmarks/scale.py --quick             # adds 1k/10k, add+wait+download 1k
    python benchmarks/scale.py --one adds 10000    # one scenario (what the table runs)

Limits are high enough that the client's CPU binds (the request bucket 100,000/s, the operating
budget on with a huge limit, so its ledger books every add), and the fake portal runs in its own
process (``portal_server.py``) so that its CPU is not counted. Each scenario runs in a fresh
client process: imports, the portal's start and the client's set-up happen before the timed
region; ``resource.getrusage`` (user + system) of the client process is read around the run
itself. Peak RSS is that process's high-water mark.

Targets (issue 12): adds at 100,000 cost at most 1.3 x the per-entity CPU at 10,000;
add + wait + download at 10,000 at most 1.3 x that at 1,000; peak RSS under 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from common import HERE, PortalProcess, machine, peak_rss_mb, table

from bitrix_docgen_async import DocgenClient, OperatingBudget, RateLimit
from bitrix_docgen_async.core.pdf import PollSchedule

LIMIT = {"burst": 5000, "per_second": 100_000.0}
BUDGET = {"limit_s": 1e9, "window_s": 600.0}
PDF_DELAY = 0.05


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _system() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


async def one(kind: str, entities: int, profile: str | None) -> dict[str, object]:
    """Run one scenario in this process; return its figures."""
    full = kind == "full"
    out = tempfile.mkdtemp(prefix="docgen-scale-")
    config = {"rate_limit": LIMIT, "operating_budget": BUDGET, "pdf_delay": PDF_DELAY}
    async with (
        PortalProcess(**config) as portal,
        DocgenClient.from_webhook(
            portal.webhook_url,
            rate_limit=RateLimit(**LIMIT),  # type: ignore[arg-type]
            operating_budget=OperatingBudget(**BUDGET),
            pdf_schedule=PollSchedule(min_conversion=PDF_DELAY, interval=0.1),
        ) as client,
    ):
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu, wall, system = _cpu(), time.perf_counter(), _system()
        ok = 0
        async for result in client.documents.generate_many(
            template_id=portal.template_id,
            entity_type_id=2,
            entity_ids=range(1, entities + 1),
            wait_pdf=full,
            download_dir=out if full else None,
        ):
            ok += result.ok
        cpu, wall, system = _cpu() - cpu, time.perf_counter() - wall, _system() - system
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)  # type: ignore[arg-type]
        stats = await portal.stats()
    shutil.rmtree(out, ignore_errors=True)
    return {
        "kind": kind,
        "entities": entities,
        "ok": ok,
        "cpu_s": cpu,
        "wall_s": wall,
        "us_per_entity": cpu / entities * 1e6,
        # The kernel's part (sockets, creating and renaming the downloaded files).
        "system_us_per_entity": system / entities * 1e6,
        "peak_rss_mb": peak_rss_mb(),
        "requests": stats["requests"],
        "rejected": stats["rejected_rate_limit"] + stats["rejected_operating"],
    }


def scenario(kind: str, entities: int, timeout: float) -> dict[str, object]:
    """Run one scenario in a fresh process (so that its peak RSS is its own)."""
    done = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(HERE / "scale.py"), "--one", kind, str(entities)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(args: argparse.Namespace) -> None:
    if args.one:
        kind, entities = args.one[0], int(args.one[1])
        print(json.dumps(asyncio.run(one(kind, entities, args.profile))), flush=True)
        return
    plan = [("adds", 1_000), ("adds", 10_000), ("adds", 100_000), ("full", 1_000), ("full", 10_000)]
    if args.quick:
        plan = [("adds", 1_000), ("adds", 10_000), ("full", 1_000)]
    rows = []
    figures: dict[tuple[str, int], float] = {}
    for kind, entities in plan:
        result = scenario(kind, entities, args.timeout)
        figures[(kind, entities)] = float(result["us_per_entity"])  # type: ignore[arg-type]
        rows.append(
            [
                "adds only" if kind == "adds" else "add + wait + download",
                f"{entities:,}",
                result["ok"],
                f"{result['cpu_s']:.1f}",
                f"{result['wall_s']:.1f}",
                f"{result['us_per_entity']:.0f}",
                f"{result['peak_rss_mb']:.0f}",
                result["requests"],
                result["rejected"],
            ]
        )
        print(f"  done: {kind} {entities}", file=sys.stderr, flush=True)
    print(f"machine: {machine()}")
    print(
        table(
            [
                "workflow",
                "entities",
                "ok",
                "client CPU s",
                "wall s",
                "CPU us/entity",
                "peak RSS MB",
                "requests",
                "503/429",
            ],
            rows,
        )
    )
    for kind, small, large in (("adds", 10_000, 100_000), ("full", 1_000, 10_000)):
        if (kind, small) in figures and (kind, large) in figures:
            ratio = figures[(kind, large)] / figures[(kind, small)]
            verdict = "ok" if ratio <= 1.3 else "MISSED"
            print(f"{kind}: {large:,} / {small:,} per-entity CPU = {ratio:.2f} (<= 1.3: {verdict})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--one", nargs=2, metavar=("KIND", "ENTITIES"), help="adds|full N")
    parser.add_argument("--quick", action="store_true", help="the smaller scenarios only")
    parser.add_argument("--profile", help="with --one: write a cProfile dump here")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per scenario, s")
    main(parser.parse_args())
