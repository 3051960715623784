"""taskiq workers end to end: examples/taskiq_worker.py and taskiq_producer.py, real processes.

A real ``redis-server``, the fake portal in its own process (``benchmarks/portal_server.py``:
burst 50, 20 per s, ``document.add``'s operating budget binding), three ``taskiq worker``
processes, 600 entities in chunks of 100 (``benchmarks/workers_taskiq.py`` runs 3,000). The
counts are asserted; the wall time is printed against the bound of the limits.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis.needs import need_module
from tests.redis.redis_server import RedisServer

need_module("redis.asyncio", "redis-py is not installed (the [redis] extra)")
need_module("taskiq_redis", "taskiq-redis is not installed (the [taskiq] extra)")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "benchmarks" / "portal_server.py"
PRODUCER = ROOT / "examples" / "taskiq_producer.py"
ADD = "crm.documentgenerator.document.add"
RATE = {"burst": 50, "per_second": 20.0}
BUDGET = {"limit_s": 1.0, "window_s": 2.0}
ADD_COST = 0.01
ENTITIES = 600


class Portal:
    """``benchmarks/portal_server.py`` in a child process."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.webhook_url = ""
        self.template_id = 0

    async def _line(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        return dict(json.loads(await asyncio.wait_for(self.process.stdout.readline(), 60)))

    async def start(self) -> None:
        config = {"rate_limit": RATE, "operating_budget": BUDGET, "method_costs": {ADD: ADD_COST}}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(PORTAL),
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        info = await self._line()
        self.webhook_url, self.template_id = info["webhook_url"], info["template_id"]

    async def stats(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(b"stats\n")
        await self.process.stdin.drain()
        return await self._line()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 30)


class Workers:
    """``taskiq worker`` process groups, each in a folder of its own (a "host")."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.groups: dict[str, asyncio.subprocess.Process] = {}
        self.starts = 0

    async def start(self, name: str, host: Path) -> None:
        host.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        env = dict(self.env, TMPDIR=str(host), PYTHONPATH=str(ROOT))
        with (self.logs / f"{name}.{self.starts}.log").open("wb") as log:
            self.groups[name] = await asyncio.create_subprocess_exec(
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
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own group: SIGKILL takes the whole "host"
            )

    async def kill(self, name: str) -> None:
        proc = self.groups.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 30)

    async def stop(self) -> None:
        procs = [proc for proc in self.groups.values() if proc.returncode is None]
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        # The worker process stops at once; taskiq's process manager (the group's leader) may
        # linger after it, so what is left of the groups is killed after a short grace.
        if procs:
            await asyncio.wait([asyncio.ensure_future(p.wait()) for p in procs], timeout=8)
        for proc in procs:
            if proc.returncode is None:
                os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        self.groups.clear()

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.logs.glob("*.log"))


@pytest.fixture
async def portal() -> AsyncIterator[Portal]:
    served = Portal()
    await served.start()
    try:
        yield served
    finally:
        await served.stop()


def worker_env(redis: RedisServer, portal: Portal) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        REDIS_URL=redis.url,
        BITRIX_WEBHOOK_URL=portal.webhook_url,
        DOCGEN_RATE=f"{RATE['burst']},{RATE['per_second']}",
        DOCGEN_BUDGET=f"{BUDGET['limit_s']},{BUDGET['window_s']}",
        DOCGEN_CHUNK_SIZE="100",
        # 3 chunks at once x 100 entities x 0.02 s each (0.01 s of a 0.5 s/s budget) = 6 s.
        DOCGEN_REDELIVERY="8",
        DOCGEN_LEASE="3",
        DOCGEN_RECONCILE_DELAY="0.5",
        # the fake portal's adds take 0.01 s: a killed worker's budget comes back after 5 s
        DOCGEN_RESERVATION_TTL="5",
    )
    return env


async def produce(
    env: dict[str, str], run_id: str, template: int, ids: str, logs: Path
) -> tuple[int, dict[str, Any]]:
    with (logs / f"producer-{run_id}.log").open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(PRODUCER),
            run_id,
            "--template",
            str(template),
            "--ids",
            ids,
            "--no-pdf",
            "--timeout",
            "150",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 180)
    lines = out.decode().strip().splitlines()
    assert lines, (logs / f"producer-{run_id}.log").read_text()
    return proc.returncode or 0, json.loads(lines[-1])


async def check_run(
    portal: Portal,
    rc: int,
    report: dict[str, Any],
    workers: Workers,
    label: str,
    *,
    refusals: int = 0,
) -> None:
    stats = await portal.stats()
    bound = max(
        (stats["requests"] - RATE["burst"]) / RATE["per_second"],
        (ENTITIES * ADD_COST - BUDGET["limit_s"]) / (BUDGET["limit_s"] / BUDGET["window_s"]),
    )
    print(
        f"\n{label}: {stats['documents']} documents for {stats['entities']} entities, "
        f"{stats['rejected_rate_limit']} x 503, {stats['rejected_operating']} x 429, "
        f"{stats['requests']} requests, wall {report.get('wall')} s vs bound {bound:.1f} s"
    )
    assert rc == 0, (report, workers.output())
    assert stats["documents"] == ENTITIES and stats["entities"] == ENTITIES
    assert stats["rejected_rate_limit"] + stats["rejected_operating"] <= refusals
    assert report["done"] == ENTITIES and report["failed"] == 0
    assert report["chunks_finished"] == report["chunks"] == ENTITIES // 100


async def test_three_workers_make_each_document_once(
    redis_server: RedisServer, portal: Portal, tmp_path: Path
) -> None:
    env = worker_env(redis_server, portal)
    workers = Workers(env, tmp_path)
    try:
        for n in range(3):
            await workers.start(f"worker{n}", tmp_path / "host")
        rc, report = await produce(env, "plain", portal.template_id, f"1-{ENTITIES}", tmp_path)
        await check_run(portal, rc, report, workers, "3 workers")
    finally:
        await workers.stop()


async def test_a_worker_killed_twice_leaves_no_duplicate(
    redis_server: RedisServer, portal: Portal, tmp_path: Path
) -> None:
    env = worker_env(redis_server, portal)
    workers = Workers(env, tmp_path)
    try:
        for n in range(3):
            await workers.start(f"worker{n}", tmp_path / "host")
        producer = asyncio.ensure_future(
            produce(env, "killed", portal.template_id, f"1-{ENTITIES}", tmp_path)
        )
        from bitrix_docgen_async.integrations.taskiq import DocgenTaskiq

        follower = DocgenTaskiq(redis_server.url)
        for threshold in (ENTITIES // 6, ENTITIES // 2):
            async with asyncio.timeout(120):
                while (await follower.progress("killed")).done < threshold:
                    assert not producer.done(), producer.result()
                    await asyncio.sleep(0.05)
            await workers.kill("worker0")  # mid-chunk: claims held, adds in flight
            await workers.start("worker0", tmp_path / "host")
        rc, report = await producer
        # A worker killed mid-request leaves the shared limiter one step behind the portal (its
        # request may have counted on the portal, its bookkeeping died with it): a refusal or
        # two may follow, and are retried invisibly. The issue asks exactly one document per
        # entity and every chunk finished here; the 0 x 503/429 figure is the plain run's.
        await check_run(portal, rc, report, workers, "killed twice", refusals=3)
        assert workers.starts == 5
    finally:
        await workers.stop()


async def test_two_hosts_sharing_only_redis(
    redis_server: RedisServer, portal: Portal, tmp_path: Path
) -> None:
    env = worker_env(redis_server, portal)
    workers = Workers(env, tmp_path)
    try:
        await workers.start("a0", tmp_path / "host-a")
        await workers.start("a1", tmp_path / "host-a")
        await workers.start("b0", tmp_path / "host-b")
        rc, report = await produce(env, "hosts", portal.template_id, f"1-{ENTITIES}", tmp_path)
        await check_run(portal, rc, report, workers, "two hosts")
    finally:
        await workers.stop()


async def test_a_failed_chunk_raises_the_librarys_error_in_the_producer(
    redis_server: RedisServer, portal: Portal, tmp_path: Path
) -> None:
    from bitrix_docgen_async.errors import BitrixError
    from bitrix_docgen_async.integrations.taskiq import DocgenTaskiq

    env = worker_env(redis_server, portal)
    workers = Workers(env, tmp_path)
    producer = DocgenTaskiq(redis_server.url)
    try:
        await workers.start("worker0", tmp_path / "host")
        await producer.broker.startup()
        run = await producer.enqueue(
            "missing-template", [1, 2, 3], template_id=987654, entity_type_id=2, wait_pdf=False
        )
        assert [task.task_id for task in run.tasks] == ["missing-template:0"]
        with pytest.raises(BitrixError) as caught:
            await asyncio.wait_for(run.wait(within=60), 90)
        error = caught.value
        print(f"\nthe producer got {type(error).__module__}.{type(error).__name__}: {error}")
        assert type(error).__module__ == "bitrix_docgen_async.errors"
        # pickled whole: the attributes came along (the stock backend would lose them)
        assert getattr(error, "method", None) == "crm.documentgenerator.document.add"
        assert "987654" in str(error) or "template" in str(error).lower()
        progress = await producer.progress("missing-template")
        assert (progress.chunks_finished, progress.failed, progress.done) == (1, 3, 0)
    finally:
        await producer.broker.shutdown()
        await workers.stop()
