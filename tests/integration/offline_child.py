"""An offline-event consumer in its own process, for the SIGKILL test (not collected by pytest).

It prints the document id of each event it handles, flushed, before its step returns; the
confirmation comes later (the next step), so a kill between the two leaves it unconfirmed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from bitrix_docgen_async import DocgenClient, RateLimit


async def main(state_file: str) -> None:
    creds = json.loads(os.environ["OFFLINE_CHILD_OAUTH"])
    limit = RateLimit(burst=50, per_second=100.0)
    async with DocgenClient.from_oauth(**creds, rate_limit=limit) as client:
        events = client.events.offline(state_file=state_file, until_empty=True)
        async with events:
            async for event in events:
                print(event.document_id, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
