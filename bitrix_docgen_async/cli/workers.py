"""``bitrix-docgen worker`` and ``bitrix-docgen enqueue``: a run on taskiq workers.

``worker`` runs one taskiq worker in this process (the receiver of
:mod:`bitrix_docgen_async.integrations.taskiq`, with its startup and shutdown events: one client,
a ``RedisLimiter`` shared with the other workers); start it as often, and on as many hosts, as
you like. ``enqueue`` sends a run's chunks to them and, with ``--follow``, prints one progress
line a second until every chunk is finished. Both need the ``taskiq`` extra; the webhook is
needed only by the workers (``--webhook`` or ``BITRIX_WEBHOOK_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

from bitrix_docgen_async.cli.errors import EXIT_FAILED, EXIT_OK, UsageError
from bitrix_docgen_async.cli.ranges import entity_type, json_values, parse_ids
from bitrix_docgen_async.core.ratelimit import OperatingBudget, RateLimit
from bitrix_docgen_async.env import WEBHOOK_ENV

__all__ = ["REDIS_ENV", "add_worker_commands", "run_enqueue", "run_worker"]

#: Where both commands read the Redis URL from when ``--redis`` is not given.
REDIS_ENV = "REDIS_URL"


def _pair(text: str) -> tuple[float, float]:
    first, sep, second = text.partition(",")
    try:
        values = float(first), float(second)
    except ValueError:
        values = (0.0, 0.0)
    if not sep or values[0] <= 0 or values[1] <= 0:
        raise argparse.ArgumentTypeError(f"expected two numbers > 0 as A,B, got {text!r}")
    return values


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _shared(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis", metavar="URL", help=f"the run's Redis (default: ${REDIS_ENV})")
    parser.add_argument(
        "--queue", default="bitrix_docgen", help="the Redis stream of the chunks (bitrix_docgen)"
    )
    parser.add_argument(
        "--chunk-size", type=_positive, default=100, help="entities per chunk (100)"
    )


def add_worker_commands(sub: Any) -> None:
    """Register ``worker`` and ``enqueue`` on the ``bitrix-docgen`` subparsers."""
    worker = sub.add_parser("worker", help="run a taskiq worker for document runs (Redis)")
    _shared(worker)
    worker.add_argument(
        "--webhook",
        metavar="URL",
        help=f"the portal's webhook (default: ${WEBHOOK_ENV}; prefer the variable)",
    )
    worker.add_argument(
        "--plan",
        choices=("standard", "enterprise"),
        default="standard",
        help="the portal's request limit (standard: burst 50, 2/s; enterprise: 250, 5/s)",
    )
    worker.add_argument(
        "--bucket",
        type=_pair,
        metavar="BURST,PER_S",
        help="the request bucket instead of --plan's, e.g. 50,20 for the emulator",
    )
    worker.add_argument(
        "--budget",
        type=_pair,
        metavar="LIMIT_S,WINDOW_S",
        help="document.add's operating budget (480,600)",
    )
    worker.add_argument(
        "--tasks", type=_positive, default=1, help="chunks this worker runs at once (1)"
    )
    worker.add_argument(
        "--lease", type=float, default=30.0, help="seconds a dead worker's entities stay held"
    )
    worker.add_argument(
        "--redelivery",
        type=float,
        help="seconds before a dead worker's chunk goes to another (default: from the chunk size)",
    )
    worker.set_defaults(handler=run_worker, prog=worker.prog)

    enqueue = sub.add_parser("enqueue", help="send a run's chunks to the taskiq workers")
    _shared(enqueue)
    enqueue.add_argument("run_id", metavar="RUN_ID", help="names the run (journal, progress)")
    enqueue.add_argument("--template", type=_positive, required=True, metavar="ID")
    enqueue.add_argument("--entity-type", type=entity_type, required=True, metavar="TYPE")
    enqueue.add_argument("--ids", type=parse_ids, required=True, help="entity ids, e.g. 1-500,7")
    enqueue.add_argument("--values", type=json_values, metavar="JSON", help="placeholder values")
    enqueue.add_argument("--no-pdf", action="store_true", help="do not wait for the PDFs")
    enqueue.add_argument(
        "--follow", action="store_true", help="print progress until every chunk is finished"
    )
    enqueue.add_argument(
        "--timeout", type=float, default=3600.0, help="--follow gives up after this (3600 s)"
    )
    enqueue.set_defaults(handler=run_enqueue, prog=enqueue.prog)


def _redis_url(args: argparse.Namespace) -> str:
    url = args.redis or os.environ.get(REDIS_ENV)
    if not url:
        raise UsageError(f"no Redis: pass --redis URL or set {REDIS_ENV}", prog=args.prog)
    return str(url)


def _docgen(args: argparse.Namespace, **options: Any) -> Any:
    try:
        from bitrix_docgen_async.integrations.taskiq import DocgenTaskiq
    except ImportError as exc:
        raise UsageError(str(exc), prog=args.prog) from None
    return DocgenTaskiq(
        _redis_url(args), chunk_size=args.chunk_size, queue_name=args.queue, **options
    )


async def run_worker(args: argparse.Namespace) -> int:
    """Run one taskiq worker until interrupted."""
    webhook = args.webhook or os.environ.get(WEBHOOK_ENV)
    if not webhook:
        raise UsageError(f"no webhook: pass --webhook URL or set {WEBHOOK_ENV}", prog=args.prog)
    if args.bucket is not None:
        rate = RateLimit(burst=int(args.bucket[0]), per_second=args.bucket[1])
    else:
        rate = RateLimit.enterprise() if args.plan == "enterprise" else RateLimit.standard()
    budget = OperatingBudget(*args.budget) if args.budget else OperatingBudget()
    docgen = _docgen(
        args,
        webhook=webhook,
        rate_limit=rate,
        operating_budget=budget,
        chunks_in_flight=args.tasks,
        redelivery=args.redelivery,
        journal_lease=args.lease,
    )
    from taskiq.api import run_receiver_task

    print(
        f"{args.prog}: {docgen!r}, redelivery after {docgen.redelivery:g} s; Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    try:
        await run_receiver_task(docgen.broker, max_async_tasks=args.tasks, run_startup=True)
    finally:
        await docgen.broker.shutdown()
    return EXIT_OK


async def run_enqueue(args: argparse.Namespace) -> int:
    """Enqueue a run; with ``--follow``, wait for it: 0 when every entity is done, else 1."""
    docgen = _docgen(args)
    await docgen.broker.startup()
    try:
        started = time.monotonic()
        run = await docgen.enqueue(
            args.run_id,
            args.ids,
            template_id=args.template,
            entity_type_id=int(args.entity_type),
            wait_pdf=not args.no_pdf,
            values=args.values,
        )
        print(f"{args.prog}: {len(run.tasks)} chunks of run {args.run_id} enqueued", flush=True)
        if not args.follow:
            return EXIT_OK
        waiting = asyncio.ensure_future(run.wait(within=args.timeout))
        try:
            while not waiting.done():
                progress = await docgen.progress(args.run_id)
                print(
                    f"{time.monotonic() - started:7.1f} s  done {progress.done}/"
                    f"{progress.entities}  failed {progress.failed}  chunks "
                    f"{progress.chunks_finished}/{progress.chunks}",
                    flush=True,
                )
                await asyncio.wait([waiting], timeout=1.0)
            waiting.result()
        except Exception as exc:  # a chunk's error, the library's own class
            print(f"{args.prog}: a chunk failed: {type(exc).__name__}: {exc}", flush=True)
        finally:
            waiting.cancel()
        progress = await docgen.progress(args.run_id)
        print(
            f"{args.prog}: run {args.run_id}: {progress.done} done, {progress.failed} failed "
            f"of {progress.entities}, {progress.chunks_finished}/{progress.chunks} chunks",
            flush=True,
        )
        return EXIT_OK if progress.done == progress.entities else EXIT_FAILED
    finally:
        await docgen.broker.shutdown()
