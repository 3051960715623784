"""EventReceiver answer latency while a slow handler works: the answer must not wait for it.

    python benchmarks/receiver.py                          # 200 events, handler 1 s each
    python benchmarks/receiver.py --concurrency 8 50 200 --senders 10

For each handler concurrency, a receiver is served on 127.0.0.1 (aiohttp AppRunner + TCPSite)
and ``--events`` signed ``ONCRMDOCUMENTGENERATORDOCUMENTADD`` forms are POSTed to it, as the
portal's queue server does, from ``--senders`` concurrent connections. The handler sleeps
``--delay`` seconds per event. The table shows the answer latency the senders saw (p50, p99,
max), then how long ``close()`` took to drain the queue and how many events were handled.
Sender and receiver share one event loop (the handler only sleeps, so it costs no CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time

import aiohttp
from aiohttp import web
from common import machine, table

from bitrix_docgen_async.core.encoding import encode_query
from bitrix_docgen_async.receiver import DocumentEvent, EventReceiver

TOKEN = "51856fefc120afa4b628cc82d3935cce"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def form(document_id: int) -> bytes:
    return encode_query(
        {
            "event": "ONCRMDOCUMENTGENERATORDOCUMENTADD",
            "event_handler_id": "821",
            "data": {"FIELDS": {"ID": str(document_id), "ENTITY_TYPE_ID": "2", "ENTITY_ID": "7"}},
            "ts": str(int(time.time())),
            "auth": {
                "access_token": "s6p6eclrvim6da22ft9ch94ekreb52lv",
                "expires_in": "3600",
                "scope": "crm,documentgenerator",
                "domain": "127.0.0.1",
                "server_endpoint": "http://127.0.0.1/rest/",
                "status": "L",
                "client_endpoint": "http://127.0.0.1/rest/",
                "member_id": "a223c6b3710f85df22e9377d6c4f7553",
                "application_token": TOKEN,
            },
        }
    ).encode()


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(0, math.ceil(share * len(values)) - 1)]


async def run(args: argparse.Namespace, concurrency: int) -> list[object]:
    async def handler(event: DocumentEvent) -> None:
        await asyncio.sleep(args.delay)

    receiver = EventReceiver(
        application_token=TOKEN,
        handler=handler,
        concurrency=concurrency,
        queue_size=max(1000, args.events),
    )
    runner = web.AppRunner(receiver.app("/events"), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/events"
    bodies = [form(number) for number in range(1, args.events + 1)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def sender(http: aiohttp.ClientSession, share: list[bytes]) -> None:
        for data in share:
            started = time.perf_counter()
            async with http.post(url, data=data, headers=FORM) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
            statuses[response.status] = statuses.get(response.status, 0) + 1

    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=args.senders)
    try:
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            started = time.perf_counter()
            await asyncio.gather(
                *(sender(http, bodies[i :: args.senders]) for i in range(args.senders))
            )
            answered = time.perf_counter() - started
        drain_started = time.perf_counter()
        await receiver.close(timeout=args.drain_timeout)
        drained = time.perf_counter() - drain_started
    finally:
        await runner.cleanup()
    latencies.sort()
    ms = [value * 1000 for value in latencies]
    return [
        args.events,
        args.senders,
        f"{args.delay:g}",
        concurrency,
        f"{percentile(ms, 0.50):.2f}",
        f"{percentile(ms, 0.99):.2f}",
        f"{ms[-1]:.2f}",
        f"{answered:.3f}",
        ", ".join(f"{code}: {count}" for code, count in sorted(statuses.items())),
        f"{receiver.stats.handled}/{receiver.stats.accepted}",
        f"{drained:.1f}",
    ]


async def main(args: argparse.Namespace) -> None:
    rows = [await run(args, concurrency) for concurrency in args.concurrency]
    print(f"EventReceiver answer latency with a {args.delay:g} s handler ({machine()})\n")
    print(
        table(
            [
                "events",
                "senders",
                "handler s",
                "handler concurrency",
                "p50 ms",
                "p99 ms",
                "max ms",
                "all answered in s",
                "answers",
                "handled",
                "drain s",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--senders", type=int, default=10, help="concurrent connections")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds per handler call")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--drain-timeout", type=float, default=60.0)
    asyncio.run(main(parser.parse_args()))
