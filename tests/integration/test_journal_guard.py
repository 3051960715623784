"""The journal is one run's, on one portal: locked, bound, checked, and never a raw sqlite error."""

from __future__ import annotations

import asyncio
import pickle
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bitrix_docgen_async import DocgenClient, JournalError, RateLimit
from bitrix_docgen_async.testing import FakePortal
from bitrix_docgen_async.workflows.bulk import GenerationResult
from bitrix_docgen_async.workflows.journal import Journal, RunBinding, SqliteJournal

CHILD = Path(__file__).with_name("bulk_child.py")
ROOT = Path(__file__).resolve().parents[2]
FAST = RateLimit(burst=50, per_second=100.0)
ADD = "crm.documentgenerator.document.add"


def per_entity(portal: FakePortal) -> Counter[int]:
    return Counter(record.entity_id for record in portal.state.documents.values())


async def run(
    portal: FakePortal, template: int, ids: Any, journal: Path, **options: Any
) -> list[GenerationResult]:
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        return [
            r
            async for r in client.documents.generate_many(
                template_id=template,
                entity_type_id=options.pop("entity_type_id", 2),
                entity_ids=ids,
                wait_pdf=False,
                journal=journal,
                **options,
            )
        ]


async def child(portal: FakePortal, template: int, count: int, tmp: Path) -> Any:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        portal.webhook_url,
        str(template),
        str(count),
        str(tmp / "run.db"),
        str(tmp / "out"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )


async def test_a_second_process_on_the_same_journal_fails_at_once(tmp_path: Path) -> None:
    count = 100
    # Renders take long enough that the first run is still going when the second starts.
    async with FakePortal(rate_limit=FAST, pdf_delay=0.05, method_costs={ADD: 0.1}) as portal:
        template = portal.seed_template()
        first = await child(portal, template, count, tmp_path)
        assert first.stdout is not None
        line = await asyncio.wait_for(first.stdout.readline(), 60)  # it has the journal now
        assert line.endswith(b" ok\n"), line
        loop = asyncio.get_running_loop()
        started = loop.time()
        second = await child(portal, template, count, tmp_path)
        _, err = await asyncio.wait_for(second.communicate(), 30)
        took = loop.time() - started
        assert second.returncode != 0
        assert b"JournalError" in err and b"in use by another run" in err, err[-500:]
        assert first.returncode is None, "the first run ended before the second was refused"
        out, _ = await asyncio.wait_for(first.communicate(), 120)
        assert first.returncode == 0
        assert len(out.splitlines()) == count - 1
        print(f"\nsecond run refused after {took:.2f} s (process start included)")
        assert per_entity(portal) == Counter(range(1, count + 1))


async def test_a_killed_run_leaves_no_stale_lock(tmp_path: Path) -> None:
    async with FakePortal(rate_limit=FAST, method_costs={ADD: 0.05}) as portal:
        template = portal.seed_template()
        first = await child(portal, template, 50, tmp_path)
        assert first.stdout is not None
        await asyncio.wait_for(first.stdout.readline(), 60)
        first.kill()
        await asyncio.wait_for(first.wait(), 30)
        journal = tmp_path / "run.db"
        results = await run(portal, template, range(1, 51), journal, reconcile_delay=0.05)
        assert all(r.ok for r in results)
        assert per_entity(portal) == Counter(range(1, 51))


async def test_a_journal_of_another_portal_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "run.db"
    async with FakePortal(rate_limit=FAST) as one, FakePortal(rate_limit=FAST) as other:
        template = one.seed_template()
        assert other.seed_template() == template  # same ids on both portals
        done = await run(one, template, range(1, 11), journal)
        assert all(r.ok for r in done)
        with pytest.raises(JournalError, match="belongs to another portal"):
            await run(other, template, range(1, 11), journal)
        assert len(other.state.documents) == 0  # nothing skipped as done, nothing adopted


async def test_a_journal_of_another_template_or_entity_type_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "run.db"
    async with FakePortal(rate_limit=FAST) as portal:
        template = portal.seed_template()
        second = portal.seed_template()
        await run(portal, template, range(1, 4), journal)
        with pytest.raises(JournalError, match="belongs to another template"):
            await run(portal, second, range(1, 4), journal)
        with pytest.raises(JournalError, match="belongs to another entity type"):
            await run(portal, template, range(1, 4), journal, entity_type_id=1)
        assert len(portal.state.documents) == 3


async def test_a_journaled_document_of_another_entity_is_not_adopted(tmp_path: Path) -> None:
    journal = tmp_path / "run.db"
    async with FakePortal(rate_limit=FAST) as portal:
        template = portal.seed_template()
        await run(portal, template, range(1, 4), journal)
        # The journal now says entity 1's (unfinished) document is entity 2's.
        db = sqlite3.connect(journal)
        two = db.execute("SELECT document_id FROM entities WHERE entity_id = 2").fetchone()[0]
        db.execute(
            "UPDATE entities SET state = 'added', document_id = ? WHERE entity_id = 1", (two,)
        )
        db.commit()
        db.close()
        results = {r.entity_id: r for r in await run(portal, template, range(1, 4), journal)}
        assert isinstance(results[1].error, JournalError)
        assert "not adopted" in str(results[1].error)
        assert results[2].skipped and results[3].skipped
        assert per_entity(portal) == Counter(range(1, 4))


@pytest.mark.parametrize("content", [b"not sqlite " * 100, b"SQLite format 3\x00" + b"\x07" * 200])
async def test_a_damaged_journal_raises_a_journal_error(tmp_path: Path, content: bytes) -> None:
    journal = tmp_path / "run.db"
    journal.write_bytes(content)
    async with FakePortal(rate_limit=FAST) as portal:
        template = portal.seed_template()
        with pytest.raises(JournalError, match=r"run\.db") as raised:
            await run(portal, template, range(1, 4), journal)
        assert not isinstance(raised.value, sqlite3.Error)
        assert len(portal.state.documents) == 0


async def test_the_binding_stores_no_secret(tmp_path: Path) -> None:
    journal = tmp_path / "run.db"
    async with FakePortal(rate_limit=FAST) as portal:
        template = portal.seed_template()
        await run(portal, template, range(1, 3), journal)
        code = portal.webhook_url.rstrip("/").rsplit("/", 1)[1]
    for path in tmp_path.iterdir():
        assert code.encode() not in path.read_bytes(), path.name


def test_journal_error_pickles() -> None:
    error = JournalError("journal run.db: in use by another run")
    clone = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert type(clone) is JournalError and str(clone) == str(error)


async def test_the_sqlite_journal_is_a_journal(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    assert isinstance(journal, Journal)
    binding = RunBinding("https://a.example", "webhook user 1", 5, 2)
    await journal.open(binding)
    other = SqliteJournal(tmp_path / "j.db")
    with pytest.raises(JournalError, match="in use by another run"):
        await other.open(binding)
    assert (await journal.claim(3)).entry is None
    first = await journal.intend(3)
    assert await journal.intend(3) == first  # the first intent's time is kept
    await journal.record_added(3, 40)
    await journal.record_done(3, 40, None)
    entry = await journal.lookup(3)
    assert entry is not None and (entry.state, entry.document_id) == ("done", 40)
    await journal.close()
    await other.open(binding)  # free again once closed
    await other.close()
