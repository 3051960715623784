"""SIGKILL an offline-event consumer twice mid-way, restart it: nothing lost, repeats counted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from bitrix_docgen_async import RateLimit
from bitrix_docgen_async.receiver import DocumentEventType
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import oauth_client

CHILD = Path(__file__).with_name("offline_child.py")
ROOT = Path(__file__).resolve().parents[2]
COUNT = 2000
LIMIT = RateLimit(burst=50, per_second=100.0)


async def start(portal: FakePortal, state_file: Path) -> asyncio.subprocess.Process:
    creds = portal.oauth
    env = {
        **os.environ,
        "OFFLINE_CHILD_OAUTH": json.dumps(
            {
                "client_endpoint": creds.client_endpoint,
                "access_token": creds.access_token,
                "refresh_token": creds.refresh_token,
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
                "oauth_url": creds.oauth_url,
            }
        ),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        str(state_file),
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
        env=env,
    )


async def read_until(child: asyncio.subprocess.Process, wanted: int, into: list[int]) -> None:
    """Collect printed ids until ``wanted`` new ones (or the end of the output)."""
    assert child.stdout is not None
    seen = 0
    while seen < wanted:
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        if not line:
            return
        into.append(int(line))
        seen += 1


async def test_killed_consumer_loses_nothing(tmp_path: Path) -> None:
    async with FakePortal(rate_limit=LIMIT, pdf_delay=0.0) as portal:
        async with oauth_client(portal, rate_limit=LIMIT) as client:
            assert await client.events.bind(DocumentEventType.ADD, offline=True)
        template = portal.seed_template()
        ids = [portal.seed_document(template, 2, entity) for entity in range(1, COUNT + 1)]
        state_file = tmp_path / "offline.pid"
        handled: list[int] = []
        kills = 0
        for wanted in (500, 700):  # killed after ~500 of 2000, then after ~700 more
            child = await start(portal, state_file)
            await read_until(child, wanted, handled)
            assert child.returncode is None, "the consumer finished before it could be killed"
            child.send_signal(signal.SIGKILL)
            kills += 1
            assert await asyncio.wait_for(child.wait(), 30) == -signal.SIGKILL
            # Whatever it printed before dying was handled too.
            assert child.stdout is not None
            rest = await child.stdout.read()
            handled.extend(int(line) for line in rest.split())
        assert state_file.read_text().strip()  # the reservation survives the kills

        final = await start(portal, state_file)
        await read_until(final, COUNT * 2, handled)
        assert await asyncio.wait_for(final.wait(), 60) == 0

    counts = Counter(handled)
    duplicates = sum(counts.values()) - len(counts)
    print(
        f"\n{kills} kills: {len(handled)} handled, {len(counts)} distinct of {COUNT}, "
        f"{duplicates} handled twice or more"
    )
    assert sorted(counts) == ids  # none lost
    assert portal.offline_queue() == []  # every one confirmed in the end
    assert duplicates <= kills * 50  # at most the unconfirmed rest of one batch per kill
