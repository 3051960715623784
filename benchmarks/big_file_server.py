"""Serve one large PDF-like body in chunks on 127.0.0.1 (for memory.py's download row)."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

CHUNK = b"%PDF-1.4\n" + b"0" * (1 << 16)


async def serve(size_mb: int) -> None:
    total = size_mb << 20

    async def pdf(request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse(headers={"Content-Type": "application/pdf"})
        reply.content_length = total
        await reply.prepare(request)
        sent = 0
        while sent < total:
            part = CHUNK[: min(len(CHUNK), total - sent)]
            await reply.write(part)
            sent += len(part)
        await reply.write_eof()
        return reply

    app = web.Application()
    app.router.add_get("/rest/crm.documentgenerator.document.getPdf.json", pdf)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
