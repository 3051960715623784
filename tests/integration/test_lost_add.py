"""An add whose answer is lost after the portal committed it: found, never made twice.

The entity already has ``older`` documents of the same template (made an hour ago); the lookup
must find the new one whatever that number (one page of 50 in id order sees only the oldest).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bitrix_docgen_async import DocgenClient, RateLimit
from bitrix_docgen_async.errors import OutcomeUnknownError
from bitrix_docgen_async.testing import FakePortal, Faults
from tests.helpers import FAST_RETRY

FAST = RateLimit(burst=50, per_second=200.0)
ADD = "crm.documentgenerator.document.add"
ENTITY = 7
COUNTS = [0, 49, 50, 51, 500]


async def older_documents(client: DocgenClient, portal: FakePortal, template: int, n: int) -> None:
    """``n`` documents of (template, deal ENTITY) created an hour ago."""
    await asyncio.gather(*(client.documents.add(template, 2, ENTITY) for _ in range(n)))
    for record in portal.state.documents.values():
        record.created -= timedelta(hours=1)


def of_entity(portal: FakePortal) -> list[int]:
    return sorted(
        doc_id for doc_id, record in portal.state.documents.items() if record.entity_id == ENTITY
    )


@pytest.mark.parametrize("older", COUNTS)
async def test_bulk_finds_the_document_of_a_lost_add(older: int) -> None:
    faults = Faults()
    async with FakePortal(rate_limit=FAST, faults=faults) as portal:
        template = portal.seed_template()
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY
        ) as client:
            await older_documents(client, portal, template, older)
            before = of_entity(portal)
            faults.inject("drop_after", 1, method=ADD)
            results = [
                r
                async for r in client.documents.generate_many(
                    template_id=template,
                    entity_type_id=2,
                    entity_ids=[ENTITY],
                    wait_pdf=False,
                    reconcile_delay=0.05,
                )
            ]
        assert portal.stats.faults["drop_after"] == 1
        after = of_entity(portal)
        assert len(after) == older + 1, "a second document was added"
        [result] = results
        assert result.ok and result.document is not None
        assert result.document.id == (set(after) - set(before)).pop()


@pytest.mark.parametrize("older", COUNTS)
async def test_reconciling_add_returns_the_document_of_a_lost_add(older: int) -> None:
    faults = Faults()
    async with FakePortal(rate_limit=FAST, faults=faults) as portal:
        template = portal.seed_template()
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY
        ) as client:
            await older_documents(client, portal, template, older)
            before = of_entity(portal)
            faults.inject("drop_after", 1, method=ADD)
            document = await client.documents.add(
                template, 2, ENTITY, values={"Comment": "x"}, reconcile=True, reconcile_delay=0.05
            )
        assert portal.stats.faults["drop_after"] == 1
        after = of_entity(portal)
        assert len(after) == older + 1, "a second document was added"
        assert document.id == (set(after) - set(before)).pop()
        # a document read back shows only the service values (docs/portal.md#wire-quirks)
        assert portal.state.documents[document.id].values["Comment"] == "x"


async def test_without_reconcile_a_lost_add_is_reported_not_resent() -> None:
    faults = Faults()
    async with FakePortal(rate_limit=FAST, faults=faults) as portal:
        template = portal.seed_template()
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY
        ) as client:
            faults.inject("drop_after", 1, method=ADD)
            with pytest.raises(OutcomeUnknownError):
                await client.documents.add(template, 2, ENTITY)
        assert len(of_entity(portal)) == 1


async def test_reconciling_add_sends_again_when_the_add_never_ran() -> None:
    faults = Faults()
    async with FakePortal(rate_limit=FAST, faults=faults) as portal:
        template = portal.seed_template()
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY
        ) as client:
            await older_documents(client, portal, template, 3)
            faults.inject("drop_before", 1, method=ADD)  # looks the same as drop_after
            document = await client.documents.add(
                template, 2, ENTITY, reconcile=True, reconcile_delay=0.05
            )
        assert len(of_entity(portal)) == 4
        assert document.id == max(of_entity(portal))


async def test_reconciling_adds_of_one_entity_never_adopt_each_others_document() -> None:
    faults = Faults()
    async with FakePortal(rate_limit=FAST, faults=faults) as portal:
        template = portal.seed_template()
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY
        ) as client:
            faults.inject("drop_after", 2, method=ADD)
            documents = await asyncio.gather(
                *(
                    client.documents.add(template, 2, ENTITY, reconcile=True, reconcile_delay=0.05)
                    for _ in range(3)
                )
            )
            assert len(client.documents._adding) == 0  # the per-entity locks are dropped
        assert len({d.id for d in documents}) == 3
        assert sorted(d.id for d in documents) == of_entity(portal)


async def test_reconcile_checks_its_arguments(client: DocgenClient) -> None:
    with pytest.raises(TypeError):
        await client.documents.add(1, 2, 3, reconcile=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reconcile_delay"):
        await client.documents.add(1, 2, 3, reconcile=True, reconcile_delay=-1)
