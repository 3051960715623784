"""taskiq workers on one portal's limits: 3 workers, 3,000 entities in chunks of 100.

    python benchmarks/workers_taskiq.py                  # the three runs below, 3,000 entities
    python benchmarks/workers_taskiq.py --entities 600   # shorter

Needs ``redis-server`` on the PATH and the ``taskiq`` extra. The fake portal runs in its own
process (``portal_server.py``: bucket 50, 20 per s; ``document.add`` costs 0.01 s of an
operating budget of 1 s per 2 s, so the budget binds: 50 adds per second). The workers are
``taskiq worker examples.taskiq_worker:broker`` process groups; the producer is
``examples/taskiq_producer.py`` (adds only: ``--no-pdf``). Three runs:

* 3 workers;
* the same with worker 0 SIGKILLed (its whole process group) at 1/6 and at 1/2 of the run and
  restarted each time;
* two "hosts": process groups in two temp folders (2 + 1 workers) sharing only Redis.

The bound: N adds need N x 0.01 s of budget, which refills at 0.5 s per second once the first
1 s is spent, and R requests need (R - 50) / 20 s; the larger of the two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import PortalProcess, machine, table

from tests.redis.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]
ADD = "crm.documentgenerator.document.add"
RATE = {"burst": 50, "per_second": 20.0}
BUDGET = {"limit_s": 1.0, "window_s": 2.0}
ADD_COST = 0.01


async def start_worker(env: dict[str, str], host: Path, log: Path) -> asyncio.subprocess.Process:
    host.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a local folder, once
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "taskiq",
            "worker",
            "examples.taskiq_worker:broker",
            "--workers",
            "1",
            "--max-async-tasks",
            "1",
            "--no-configure-logging",
            cwd=host,
            env=dict(env, TMPDIR=str(host), PYTHONPATH=str(ROOT)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )


async def stop(procs: list[asyncio.subprocess.Process]) -> None:
    running = [proc for proc in procs if proc.returncode is None]
    for proc in running:
        os.killpg(proc.pid, signal.SIGTERM)
    if running:  # taskiq's process manager may linger after its worker: a short grace
        await asyncio.wait([asyncio.ensure_future(p.wait()) for p in running], timeout=8)
    for proc in running:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def done_count(redis_url: str, run_id: str) -> int:
    from bitrix_docgen_async.integrations.taskiq import DocgenTaskiq

    return (await DocgenTaskiq(redis_url).progress(run_id)).done


async def one_run(kind: str, entities: int, work: Path) -> dict[str, Any]:
    config = {"rate_limit": RATE, "operating_budget": BUDGET, "method_costs": {ADD: ADD_COST}}
    async with RedisServer() as redis, PortalProcess(**config) as portal:
        env = dict(
            os.environ,
            REDIS_URL=redis.url,
            BITRIX_WEBHOOK_URL=portal.webhook_url,
            DOCGEN_RATE=f"{RATE['burst']},{RATE['per_second']}",
            DOCGEN_BUDGET=f"{BUDGET['limit_s']},{BUDGET['window_s']}",
            DOCGEN_CHUNK_SIZE="100",
            DOCGEN_REDELIVERY="8",
            DOCGEN_LEASE="3",
            DOCGEN_RECONCILE_DELAY="0.5",
            DOCGEN_RESERVATION_TTL="5",
        )
        log = work / f"{kind}.log"
        hosts = [work / "host-a", work / "host-a", work / "host-b"]
        if kind != "two hosts":
            hosts = [work / "host"] * 3
        procs = [await start_worker(env, host, log) for host in hosts]
        producer = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "examples" / "taskiq_producer.py"),
            kind.replace(" ", "-"),
            "--template",
            str(portal.template_id),
            "--ids",
            f"1-{entities}",
            "--no-pdf",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        kills = 0
        if kind == "killed twice":
            for share in (6, 2):
                # other processes' progress, read from Redis: no event to wait on
                while await done_count(redis.url, "killed-twice") < entities // share:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                os.killpg(procs[0].pid, signal.SIGKILL)
                await procs[0].wait()
                procs[0] = await start_worker(env, hosts[0], log)
                kills += 1
        out, _ = await asyncio.wait_for(producer.communicate(), 3600)
        await stop(procs)
        report = json.loads(out.decode().strip().splitlines()[-1])
        stats = await portal.stats()
    bound = max(
        (stats["requests"] - RATE["burst"]) / RATE["per_second"],
        (entities * ADD_COST - BUDGET["limit_s"]) / (BUDGET["limit_s"] / BUDGET["window_s"]),
    )
    return {
        "run": kind,
        "documents": stats["documents"],
        "entities": stats["entities"],
        "503": stats["rejected_rate_limit"],
        "429": stats["rejected_operating"],
        "requests": stats["requests"],
        "chunks": f"{report.get('chunks_finished')}/{report.get('chunks')}",
        "kills": kills,
        "wall": report.get("wall"),
        "bound": round(bound, 1),
        "wall/bound": round(report["wall"] / bound, 2) if report.get("wall") else "-",
        "error": f"{report['error']}: {report['message']}" if "error" in report else "",
    }


async def main(args: argparse.Namespace) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.runs.split(","):
            work = Path(tmp) / kind.replace(" ", "-")
            work.mkdir()
            row = await one_run(kind, args.entities, work)
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(f"\n{machine()}; {args.entities} entities, chunks of 100, 3 taskiq workers\n")
    print(table(list(rows[0]), [list(r.values()) for r in rows]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=3000)
    parser.add_argument(
        "--runs",
        default="3 workers,killed twice,two hosts",
        help="which runs, comma-separated (default: all three)",
    )
    asyncio.run(main(parser.parse_args()))
