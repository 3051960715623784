"""``bitrix-docgen worker`` and ``bitrix-docgen enqueue --follow`` against a fake portal."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

from bitrix_docgen_async import RateLimit
from bitrix_docgen_async.testing import FakePortal
from tests.redis.needs import need_module
from tests.redis.redis_server import RedisServer

need_module("taskiq_redis", "taskiq-redis is not installed (the [taskiq] extra)")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


async def test_worker_and_enqueue_commands_run_a_job(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async with FakePortal(rate_limit=RateLimit(burst=50, per_second=50.0)) as portal:
        template = portal.seed_template()
        env = dict(os.environ, BITRIX_WEBHOOK_URL=portal.webhook_url, REDIS_URL=redis_server.url)
        cli = [sys.executable, "-m", "bitrix_docgen_async.cli"]
        with (tmp_path / "worker.log").open("wb") as log:
            worker = await asyncio.create_subprocess_exec(
                *cli, "worker", "--bucket", "50,50", "--budget", "10,10", "--tasks", "2",
                cwd=ROOT, env=env, stdout=log, stderr=log,
            )  # fmt: skip
        try:
            enqueue = await asyncio.create_subprocess_exec(
                *cli, "enqueue", "cli-run", "--template", str(template), "--entity-type",
                "deal", "--ids", "1-30", "--chunk-size", "10", "--no-pdf", "--follow",
                "--timeout", "60",
                cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(enqueue.communicate(), 90)
            text = out.decode()
            assert enqueue.returncode == 0, (
                text + err.decode() + (tmp_path / "worker.log").read_text()
            )
            assert "3 chunks of run cli-run enqueued" in text
            assert "30 done, 0 failed of 30, 3/3 chunks" in text
            made = Counter(int(d["entityId"]) for d in portal.documents.values())
            assert made == Counter(range(1, 31))
        finally:
            worker.terminate()
            await asyncio.wait_for(worker.wait(), 30)
        log_text = (tmp_path / "worker.log").read_text()
        assert portal.webhook_url.rstrip("/").rsplit("/", 1)[-1] not in log_text
