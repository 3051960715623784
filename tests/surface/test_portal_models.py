"""``portal.models``: the fake portal's records as the client's models (issue 16)."""

from __future__ import annotations

from bitrix_docgen_async import DocgenClient, RateLimit
from bitrix_docgen_async.models import Document, Numerator, Template
from bitrix_docgen_async.testing import FakePortal

FAST = RateLimit(burst=50, per_second=200.0)


async def test_the_models_are_what_the_client_returns(portal: FakePortal) -> None:
    numerator_id = portal.seed_numerator("Invoices", "INV-{NUMBER}")
    template_id = portal.seed_template(numerator_id=numerator_id)
    document_id = portal.seed_document(template_id, entity_id=10, values={"Comment": "x"})
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        got = await client.documents.get(document_id)
        template = await client.templates.get(template_id)
        numerator = await client.numerators.get(numerator_id)
    stored = portal.models.documents[document_id]
    assert isinstance(stored, Document)
    assert (stored.id, stored.number, stored.entity_id, stored.template_id) == (
        got.id,
        got.number,
        got.entity_id,
        got.template_id,
    )
    assert stored.entity_id == 10 and stored.number == "INV-1"
    assert list(portal.models.documents) == [document_id] and len(portal.models.documents) == 1
    assert isinstance(portal.models.templates[template_id], Template)
    assert portal.models.templates[template_id].name == template.name
    assert portal.models.numerators[numerator_id] == numerator
    assert isinstance(portal.models.numerators[numerator_id], Numerator)
    assert portal.documents[document_id]["entityId"] == "10"  # the raw wire view stays
