"""The client against the fake portal's documented answers (issue 10 §2).

The OAuth server refuses a wrong secret with HTTP 400 ``invalid_client`` and a wrong client id
with HTTP 200 ``wrong_client`` (protocol.md §11); the client's refresh maps both to
:class:`OAuthError` and does not retry. The client's own document filters stay within what
``document.list`` accepts (camelCase fields, documented prefixes).
"""

from __future__ import annotations

import asyncio

import pytest

from bitrix_docgen_async import DocgenClient, OAuthError, RateLimit
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY

GET = "crm.documentgenerator.numerator.get"


@pytest.mark.parametrize(
    ("wrong", "code", "status"),
    [("client_secret", "invalid_client", 400), ("client_id", "wrong_client", 200)],
)
async def test_a_refused_refresh_is_an_oauth_error(wrong: str, code: str, status: int) -> None:
    async with FakePortal(rate_limit=RateLimit(burst=50, per_second=50.0)) as portal:
        numerator = portal.seed_numerator()
        creds = portal.oauth
        options = {
            "client_endpoint": creds.client_endpoint,
            "access_token": creds.access_token,
            "refresh_token": creds.refresh_token,
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "oauth_url": creds.oauth_url,
        }
        options[wrong] = "WRONG_12345"
        portal.expire_access_tokens()
        async with DocgenClient.from_oauth(**options, retry=FAST_RETRY) as client:
            outcomes = await asyncio.wait_for(
                asyncio.gather(
                    *(client.call(GET, {"id": numerator}) for _ in range(5)),
                    return_exceptions=True,
                ),
                30,
            )
        assert all(isinstance(o, OAuthError) for o in outcomes), outcomes
        errors = [o for o in outcomes if isinstance(o, OAuthError)]
        assert {(e.code, e.status) for e in errors} == {(code, status)}
        assert "WRONG_12345" not in str(errors[0]) and creds.refresh_token not in repr(errors[0])
        assert portal.stats.token_refreshes == 0


async def test_the_clients_document_filters_are_accepted(
    portal: FakePortal, client: DocgenClient
) -> None:
    first, second = portal.seed_template("A"), portal.seed_template("B")
    for entity in (10, 11):
        portal.seed_document(first, 2, entity)
    portal.seed_document(second, 2, 10)
    page = await client.documents.list(
        filter={"templateId": first, "entityTypeId": 2, "entityId": 10}, order={"id": "asc"}
    )
    assert [d.id for d in page.items] == [1]
    page = await client.documents.list(filter={">=id": 2, "!@entityId": [11]})
    assert [d.id for d in page.items] == [3]
