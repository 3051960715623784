"""``bitrix-docgen generate --journal redis://...``: the shared journal from the command line."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from bitrix_docgen_async import RateLimit
from bitrix_docgen_async.cli import main
from bitrix_docgen_async.cli.errors import EXIT_OK, EXIT_USAGE
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import PortalFactory
from tests.redis.needs import need_module
from tests.redis.redis_server import RedisServer

need_module("redis.asyncio", "redis-py is not installed (the [redis] extra)")

FLAGS = ["--plan", "fast", "--burst", "50", "--rate", "100"]


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
async def fake(start_portal: PortalFactory, monkeypatch: pytest.MonkeyPatch) -> FakePortal:
    portal = await start_portal(rate_limit=RateLimit(burst=50, per_second=100.0))
    monkeypatch.setenv("BITRIX_WEBHOOK_URL", portal.webhook_url)
    return portal


async def test_a_redis_journal_resumes_without_duplicates(
    fake: FakePortal, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    template = fake.seed_template()
    run = [
        "generate", *FLAGS, "--template", str(template), "--entity-type", "deal",
        "--ids", "1-40", "--journal", redis_server.url, "--run-id", "cli-run", "--json",
    ]  # fmt: skip
    code, out, err = await cli(capsys, *run)
    assert code == EXIT_OK, err
    first = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["entity_id"] for r in first) == list(range(1, 41))
    assert not any(r["skipped"] for r in first)
    # The same command again: every entity is done in the shared journal, nothing is added.
    code, out, err = await cli(capsys, *run)
    assert code == EXIT_OK, err
    again = [json.loads(line) for line in out.splitlines()]
    assert all(r["skipped"] for r in again) and len(again) == 40
    made = Counter(int(d["entityId"]) for d in fake.documents.values())
    assert made == Counter(range(1, 41))  # one document per entity, over both runs
    assert fake.webhook_code not in out + err


async def test_a_redis_journal_of_another_template_is_refused_before_any_add(
    fake: FakePortal, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = fake.seed_template(), fake.seed_template()
    base = ["generate", *FLAGS, "--entity-type", "deal", "--ids", "1-3"]
    journal = ["--journal", redis_server.url, "--run-id", "shared"]
    code, _, err = await cli(capsys, *base, "--template", str(first), *journal)
    assert code == EXIT_OK, err
    adds = fake.stats.by_method.get("crm.documentgenerator.document.add", 0)
    code, _, err = await cli(capsys, *base, "--template", str(second), *journal)
    assert code == EXIT_USAGE
    assert "cannot use the journal" in err
    assert fake.stats.by_method.get("crm.documentgenerator.document.add", 0) == adds
