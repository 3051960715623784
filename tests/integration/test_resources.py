"""The typed API end to end against the fake portal (the documented tutorial flow and lists)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from bitrix_docgen_async import DocgenClient, NotFoundError, RateLimit, WrongAuthTypeError
from bitrix_docgen_async.models import Document, DocumentEventType, EntityType, SequentSettings
from bitrix_docgen_async.testing import FakePortal, build_docx
from tests.helpers import FAST_RETRY, oauth_client


async def test_the_tutorial_flow(client: DocgenClient, portal: FakePortal) -> None:
    numerator = await client.numerators.add(
        "REST Enumerator", "INV-{NUMBER}", settings=SequentSettings(start=100)
    )
    assert numerator.name == "REST Enumerator" and numerator.template == "INV-{NUMBER}"
    assert isinstance(numerator.id, int) and numerator.id > 0

    template = await client.templates.add(
        "Invoice",
        build_docx(["DocumentNumber", "Comment"]),
        numerator_id=numerator.id,
        region="us",
        entity_type_ids=[EntityType.DEAL],
        users=["UA"],
    )
    assert isinstance(template.id, int) and template.numerator_id == numerator.id
    assert template.entity_type_ids == ("2",) and template.users == ("UA",)
    assert template.active is True and template.with_stamps is False

    document = await client.documents.add(
        template.id, EntityType.DEAL, 8287, values={"Comment": "first"}
    )
    assert isinstance(document, Document)
    assert document.template_id == template.id and document.entity_id == 8287
    assert document.entity_type_id == 2 and document.number == "INV-100"
    assert document.values["Comment"] == "first"
    assert isinstance(document.created_time, datetime) and document.created_time.tzinfo

    fetched = await client.documents.get(document.id)
    assert fetched.id == document.id and fetched.number == document.number

    listed = [d async for d in client.documents.list(filter={"entityId": 8287})]
    assert [d.id for d in listed] == [document.id]

    updated = await client.documents.update(document.id, values={"Comment": "second"})
    assert updated.id == document.id and updated.values["Comment"] == "second"

    url = await client.documents.enable_public_url(document.id)
    assert url is not None and url.startswith("http")
    assert await client.documents.enable_public_url(document.id, enabled=False) is None

    uploaded = await client.documents.upload(
        EntityType.DEAL,
        8287,
        build_docx(["X"]),
        region="us",
        title="Uploaded",
        number="U-1",
    )
    assert uploaded.title == "Uploaded" and uploaded.number == "U-1"

    fields = await client.documents.get_fields(document.id)
    assert fields  # at least the template's placeholders
    template_fields = await client.templates.get_fields(template.id, EntityType.DEAL, 8287)
    assert "Comment" in template_fields or template_fields

    await client.documents.delete(document.id)
    with pytest.raises(NotFoundError):
        await client.documents.get(document.id)

    numerators = [n async for n in client.numerators.list()]
    assert numerator.id in [n.id for n in numerators]
    templates = [t async for t in client.templates.list()]
    assert [t.id for t in templates] == [template.id]


async def test_listing_1234_documents_costs_at_most_3_requests() -> None:
    async with FakePortal(rate_limit=RateLimit.standard()) as portal:
        template = portal.seed_template()
        ids = [portal.seed_document(template, 2, 1000 + i) for i in range(1234)]
        async with DocgenClient.from_webhook(portal.webhook_url) as client:
            seen = [d.id async for d in client.documents.list(order={"id": "asc"})]
            assert seen == ids
            assert portal.stats.requests <= 3
            before = portal.stats.requests
            empty = [d async for d in client.documents.list(filter={"entityId": 1})]
            assert empty == [] and portal.stats.requests - before == 1
            first = await client.documents.list()
            assert first.total == 1234 and len(first.items) == 50 and first.next == 50


async def test_500_concurrent_gets_cost_10_requests() -> None:
    async with FakePortal(rate_limit=RateLimit.standard()) as portal:
        template = portal.seed_template()
        ids = [portal.seed_document(template, 2, i + 1) for i in range(499)]
        async with DocgenClient.from_webhook(portal.webhook_url, retry=FAST_RETRY) as client:
            outcomes = await asyncio.gather(
                *(client.documents.get(i) for i in [*ids, 999_999]), return_exceptions=True
            )
        assert [d.id for d in outcomes[:-1] if isinstance(d, Document)] == ids
        assert isinstance(outcomes[-1], NotFoundError)
        assert portal.stats.requests == 10


INVALID: list[tuple[str, Any]] = [
    ("documents.get", lambda c: c.documents.get(0)),
    ("documents.get", lambda c: c.documents.get(-5)),
    ("documents.get", lambda c: c.documents.get("7")),
    ("documents.get", lambda c: c.documents.get(True)),
    ("documents.add", lambda c: c.documents.add(1, 6, 1)),
    ("documents.add", lambda c: c.documents.add(1, 2, 0)),
    ("documents.add", lambda c: c.documents.add(1, 2, 1, values={1: "x"})),
    ("documents.add", lambda c: c.documents.add(1, 2, 1, values=["x"])),
    ("documents.add", lambda c: c.documents.add(1, 2, 1, stamps_enabled=1)),
    ("documents.update", lambda c: c.documents.update(None)),
    (
        "documents.upload",
        lambda c: c.documents.upload(2, 1, b"", region="us", title="t", number="1"),
    ),
    (
        "documents.upload",
        lambda c: c.documents.upload(2, 1, b"x", region="", title="t", number="1"),
    ),
    (
        "documents.upload",
        lambda c: c.documents.upload(2, 1, "/no/such.docx", region="us", title="t", number="1"),
    ),
    ("documents.list", lambda c: c.documents.list(order={"id": "up"}).page()),
    ("documents.list", lambda c: c.documents.list(select=[]).page()),
    (
        "templates.add",
        lambda c: c.templates.add("", b"x", numerator_id=1, region="us", entity_type_ids=[2]),
    ),
    (
        "templates.add",
        lambda c: c.templates.add("t", b"x", numerator_id=1, region="us", entity_type_ids=[]),
    ),
    (
        "templates.add",
        lambda c: c.templates.add("t", b"x", numerator_id=1, region="us", entity_type_ids=[99]),
    ),
    (
        "templates.add",
        lambda c: c.templates.add("t", 42, numerator_id=1, region="us", entity_type_ids=[2]),
    ),
    (
        "templates.add",
        lambda c: c.templates.add(
            "t", b"x", numerator_id=1, region="us", entity_type_ids=[2], users="UA"
        ),
    ),
    ("templates.update", lambda c: c.templates.update(1)),
    ("templates.get_fields", lambda c: c.templates.get_fields(1, 0)),
    ("numerators.add", lambda c: c.numerators.add("")),
    ("numerators.add", lambda c: c.numerators.add("n", settings=SequentSettings(step=0))),
    (
        "numerators.add",
        lambda c: c.numerators.add("n", settings=SequentSettings(periodic_by="week")),
    ),
    ("numerators.update", lambda c: c.numerators.update(1)),
    ("events.bind", lambda c: c.events.bind("ONSOMETHINGELSE", "https://example.com/h")),
    ("events.bind", lambda c: c.events.bind(DocumentEventType.ADD, "not a url")),
]


@pytest.mark.parametrize(
    ("name", "make"), INVALID, ids=[f"{n}-{i}" for i, (n, _) in enumerate(INVALID)]
)
async def test_invalid_arguments_fail_before_any_request(name: str, make: Any) -> None:
    async with FakePortal() as portal:
        async with oauth_client(portal) as client:
            with pytest.raises((ValueError, TypeError)):
                await make(client)
        assert portal.stats.requests == 0, name


async def test_event_methods_under_a_webhook_say_what_is_needed(
    client: DocgenClient, portal: FakePortal
) -> None:
    with pytest.raises(WrongAuthTypeError, match="from_oauth"):
        await client.events.bind(DocumentEventType.ADD, "https://example.com/handler")
    assert portal.stats.requests == 0


async def test_events_bind_get_unbind_under_oauth(portal: FakePortal) -> None:
    async with oauth_client(portal) as client:
        assert await client.events.bind("onCrmDocumentGeneratorDocumentAdd", "https://h.example/a")
        bindings = await client.events.get()
        assert [(b.event, b.handler) for b in bindings] == [
            ("ONCRMDOCUMENTGENERATORDOCUMENTADD", "https://h.example/a")
        ]
        assert await client.events.unbind(DocumentEventType.ADD, "https://h.example/a") == 1
        assert await client.events.get() == []
