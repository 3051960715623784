"""RedisJournal: the journal protocol through a real redis-server, claims, leases, takeover."""

from __future__ import annotations

import asyncio
import pickle
from collections import Counter

import pytest

from bitrix_docgen_async import DocgenClient, RateLimit
from bitrix_docgen_async.errors import JournalError
from bitrix_docgen_async.testing import FakePortal
from bitrix_docgen_async.workflows.bulk import GenerationResult, _binding
from bitrix_docgen_async.workflows.journal import Journal, RunBinding
from tests.helpers import FAST_RETRY, FakeClock
from tests.redis.needs import need_module
from tests.redis.redis_server import RedisServer

need_module("redis.asyncio", "redis-py is not installed (the [redis] extra)")

from bitrix_docgen_async.redis_journal import (  # noqa: E402
    ClaimLostError,
    RedisJournal,
    journal_keys,
    run_counts,
)

BINDING = RunBinding("https://portal.example", "webhook user 1", 7, 2)
FAST = RateLimit(burst=50, per_second=200.0)


def per_entity(portal: FakePortal) -> Counter[int]:
    return Counter(int(d["entityId"]) for d in portal.documents.values())


async def test_the_protocol_records_like_the_local_journal(redis_server: RedisServer) -> None:
    journal = RedisJournal(redis_server.url, "run-1")
    assert isinstance(journal, Journal)
    await journal.open(BINDING)
    try:
        claim = await journal.claim(5)
        assert claim.entry is None and not claim.held_elsewhere
        first = await journal.intend(5)
        assert await journal.intend(5) == first  # the first intent's time is kept
        entry = await journal.lookup(5)
        assert entry is not None and (entry.state, entry.intended_at) == ("adding", first)
        await journal.record_failed(5, "OutcomeUnknownError: lost")
        assert (await journal.counts())["failed"] == 1
        await journal.record_added(5, 901)
        await journal.record_done(5, 901, "pdfs/document-901.pdf")
        entry = await journal.lookup(5)
        assert entry is not None
        assert (entry.state, entry.document_id, entry.pdf_path) == (
            "done",
            901,
            "pdfs/document-901.pdf",
        )
        await journal.release(5)
        assert await journal.lookup(6) is None
        assert await journal.counts() == {"adding": 0, "added": 0, "done": 1, "failed": 0}
    finally:
        await journal.close()
    await journal.close()  # idempotent
    with pytest.raises(JournalError, match="not open"):
        await journal.claim(5)

    # a new worker resumes: the record is there, the claim is free
    again = RedisJournal(redis_server.url, "run-1")
    await again.open(BINDING)
    try:
        claim = await again.claim(5)
        assert claim.entry is not None and claim.entry.state == "done"
    finally:
        await again.close()


async def test_a_run_is_bound_and_stores_no_secret(redis_server: RedisServer) -> None:
    journal = RedisJournal(redis_server.url, "bound")
    await journal.open(BINDING)
    await journal.close()
    for other, what in (
        (RunBinding("https://other.example", "webhook user 1", 7, 2), "portal"),
        (RunBinding("https://portal.example", "webhook user 2", 7, 2), "webhook user"),
        (RunBinding("https://portal.example", "webhook user 1", 8, 2), "template: 7 there"),
        (RunBinding("https://portal.example", "webhook user 1", 7, 3), "entity type"),
    ):
        stranger = RedisJournal(redis_server.url, "bound")
        with pytest.raises(JournalError, match=what) as caught:
            await stranger.open(other)
        await stranger.close()
        assert pickle.loads(pickle.dumps(caught.value)).args == caught.value.args  # noqa: S301
    reader = RedisJournal(redis_server.url, "bound")
    meta = await reader.redis.hgetall(journal_keys("bound")["meta"])
    await reader.close()
    stored = b" ".join(meta.values())
    assert b"webhook user" not in stored and b"portal.example" in stored
    assert "secret" not in repr(RedisJournal("redis://:secret@127.0.0.1:1/0", "x"))


async def test_a_live_claim_is_held_elsewhere_until_released(redis_server: RedisServer) -> None:
    one = RedisJournal(redis_server.url, "shared", owner="one")
    two = RedisJournal(redis_server.url, "shared", owner="two")
    await one.open(BINDING)
    await two.open(BINDING)
    try:
        assert not (await one.claim(3)).held_elsewhere
        assert (await two.claim(3)).held_elsewhere
        with pytest.raises(JournalError, match="no longer claimed"):
            await two.intend(3)  # a write needs the claim
        await one.release(3)
        assert not (await two.claim(3)).held_elsewhere
    finally:
        await one.close()
        await two.close()


async def test_an_expired_claim_is_taken_over_with_its_intent(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock(now=1_000_000.0)
    crashed = RedisJournal(redis_server.url, "lease", owner="crashed", lease=30, clock=clock)
    heir = RedisJournal(redis_server.url, "lease", owner="heir", lease=30, clock=clock)
    await crashed.open(BINDING)
    await heir.open(BINDING)
    try:
        await crashed.claim(4)
        intended = await crashed.intend(4)
        clock.advance(20)
        assert await crashed.renew() == set()  # renewed: good for 30 s more from now
        clock.advance(29)
        assert (await heir.claim(4)).held_elsewhere
        clock.advance(2)  # the crashed worker renewed nothing since
        claim = await heir.claim(4)
        assert not claim.held_elsewhere
        assert claim.entry is not None
        assert (claim.entry.state, claim.entry.intended_at) == ("adding", intended)
        # the old owner, were it still alive, learns it lost the claim and may write nothing
        assert await crashed.renew() == {4}
        with pytest.raises(ClaimLostError, match="no longer claimed") as caught:
            await crashed.record_added(4, 77)
        again = pickle.loads(pickle.dumps(caught.value))  # noqa: S301
        assert type(again) is ClaimLostError and str(again) == str(caught.value)
    finally:
        await crashed.close()
        await heir.close()


async def test_a_takeover_reconciles_instead_of_adding_again(redis_server: RedisServer) -> None:
    # A worker recorded its intent and sent the add, then was killed before recording the
    # document. The worker that takes the entity over finds that document on the portal.
    clock = FakeClock(now=1_000_000.0)
    async with FakePortal(rate_limit=FAST) as portal:
        template = portal.seed_template()
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY
        ) as client:
            crashed = RedisJournal(redis_server.url, "crash", owner="crashed", clock=clock)
            await crashed.open(_binding(client, template, 2))
            await crashed.claim(3)
            await crashed.intend(3)
            orphan = await client.documents.add(template, 2, 3)
            # it dies: no renewal, no release (close() gives back only what it holds)
            crashed._held.clear()
            await crashed.close()
            clock.advance(31)
            heir = RedisJournal(redis_server.url, "crash", owner="heir", clock=clock)
            results = [
                r
                async for r in client.documents.generate_many(
                    template_id=template,
                    entity_type_id=2,
                    entity_ids=range(1, 6),
                    wait_pdf=False,
                    journal=heir,
                    reconcile_delay=0,
                )
            ]
        assert all(r.ok for r in results)
        assert {r.entity_id: r.document_id for r in results}[3] == orphan.id
        assert per_entity(portal) == Counter(range(1, 6))


async def test_two_runs_on_one_run_id_make_each_document_once(
    redis_server: RedisServer,
) -> None:
    async with FakePortal(rate_limit=FAST) as portal:
        template = portal.seed_template()
        ids = list(range(1, 121))

        async def run(order: list[int]) -> list[GenerationResult]:
            async with DocgenClient.from_webhook(
                portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY
            ) as client:
                return [
                    r
                    async for r in client.documents.generate_many(
                        template_id=template,
                        entity_type_id=2,
                        entity_ids=order,
                        wait_pdf=False,
                        journal=RedisJournal(redis_server.url, "twice"),
                        max_in_flight=40,
                    )
                ]

        first, second = await asyncio.wait_for(asyncio.gather(run(ids), run(ids[::-1])), timeout=60)
        assert all(r.ok for r in first + second)
        made = {r.entity_id for r in first + second if not r.skipped}
        assert made == set(ids)
        assert per_entity(portal) == Counter(ids)
        reader = RedisJournal(redis_server.url, "twice")
        counts = await run_counts(reader.redis, "twice")
        await reader.close()
        assert counts["done"] == 120 and counts["adding"] == counts["added"] == 0


async def test_generate_many_refuses_a_journal_of_another_template(
    redis_server: RedisServer,
) -> None:
    async with FakePortal(rate_limit=FAST) as portal:
        first, second = portal.seed_template(), portal.seed_template()
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY
        ) as client:
            for template in (first, second):
                journal = RedisJournal(redis_server.url, "one-template")
                stream = client.documents.generate_many(
                    template_id=template,
                    entity_type_id=2,
                    entity_ids=[1],
                    wait_pdf=False,
                    journal=journal,
                )
                if template == first:
                    assert [r.ok async for r in stream] == [True]
                else:
                    with pytest.raises(JournalError, match="another template"):
                        _ = [r async for r in stream]
                    await journal.close()
        assert len(portal.documents) == 1
