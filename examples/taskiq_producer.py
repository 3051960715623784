"""Send a run to the taskiq workers of ``examples/taskiq_worker.py`` and follow it.

::

    export REDIS_URL=redis://127.0.0.1:6379/0
    python examples/taskiq_producer.py invoices-12 --template 7 --entity-type 2 --ids 1-3000

It splits the ids into chunks (task ids ``invoices-12:0``, ``invoices-12:1``, ...), prints one
progress line a second (read from Redis: what any process could read), waits for every chunk,
and ends with one JSON line: the run's figures. A failed chunk ends it with exit code 1 and the
error's class and message, as the library raised it in the worker. Sending the same run again
is harmless: what is done is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.taskiq_worker import docgen


def _ids(text: str) -> list[int]:
    ids: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        ids.extend(range(int(first), int(last or first) + 1))
    return ids


async def main(args: argparse.Namespace) -> int:
    await docgen.broker.startup()
    try:
        started = time.monotonic()
        run = await docgen.enqueue(
            args.run_id,
            _ids(args.ids),
            template_id=args.template,
            entity_type_id=args.entity_type,
            chunk_size=args.chunk_size,
            wait_pdf=not args.no_pdf,
        )
        waiting = asyncio.ensure_future(run.wait(within=args.timeout))
        while not waiting.done():
            progress = await docgen.progress(args.run_id)
            print(
                f"{time.monotonic() - started:6.1f} s  done {progress.done}/{progress.entities}"
                f"  failed {progress.failed}  chunks {progress.chunks_finished}/{progress.chunks}",
                file=sys.stderr,
                flush=True,
            )
            await asyncio.wait([waiting], timeout=1.0)
        try:
            summaries = waiting.result()
        except Exception as exc:  # the worker's own exception, rebuilt here
            print(json.dumps({"error": type(exc).__name__, "message": str(exc)}), flush=True)
            return 1
        progress = await docgen.progress(args.run_id)
        report = {
            "run_id": args.run_id,
            "wall": round(time.monotonic() - started, 2),
            "entities": progress.entities,
            "done": progress.done,
            "failed": progress.failed,
            "chunks": progress.chunks,
            "chunks_finished": progress.chunks_finished,
            "made": sum(s["made"] for s in summaries),
        }
        print(json.dumps(report), flush=True)
        return 0
    finally:
        await docgen.broker.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_id")
    parser.add_argument("--template", type=int, required=True)
    parser.add_argument("--entity-type", type=int, default=2)
    parser.add_argument("--ids", required=True, help="e.g. 1-3000 or 5,7,10-20")
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--no-pdf", action="store_true", help="do not wait for the PDFs")
    parser.add_argument("--timeout", type=float, default=3600.0)
    sys.exit(asyncio.run(main(parser.parse_args())))
