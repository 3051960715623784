"""OAuth refresh against the fake portal: single flight, token store, failure."""

from __future__ import annotations

import asyncio

import pytest

from bitrix_docgen_async import DocgenClient, OAuthError, OAuthTokens, RateLimit
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY, oauth_client

GET = "crm.documentgenerator.numerator.get"


async def test_token_expiring_mid_run_is_refreshed_once() -> None:
    async with FakePortal(rate_limit=RateLimit(burst=50, per_second=50.0)) as portal:
        ids = [portal.seed_numerator(f"N{i}") for i in range(5)]
        stored: list[OAuthTokens] = []

        async def store(tokens: OAuthTokens) -> None:
            stored.append(tokens)

        # A slow client bucket spreads the 10 batches out, so that expiry lands mid-run.
        client = oauth_client(
            portal, token_store=store, rate_limit=RateLimit(burst=2, per_second=20.0)
        )

        async def expire_after_two_requests() -> None:
            # The portal has no event to wait on; poll its counter (bounded by wait_for below).
            while portal.stats.requests < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            portal.expire_access_tokens()

        async with client:
            expiry = asyncio.create_task(asyncio.wait_for(expire_after_two_requests(), 30))
            results = await asyncio.wait_for(
                asyncio.gather(*(client.call(GET, {"id": ids[k % 5]}) for k in range(500))), 30
            )
            await expiry
        assert len(results) == 500
        assert portal.stats.token_refreshes == 1
        assert len(stored) == 1
        assert stored[0].access_token != portal.oauth.access_token
        assert client.stats.retries > 0


async def test_a_failed_refresh_is_a_clear_error_and_not_retried() -> None:
    async with FakePortal() as portal:
        creds = portal.oauth
        client = DocgenClient.from_oauth(
            client_endpoint=creds.client_endpoint,
            access_token=creds.access_token,
            refresh_token="not-the-refresh-token",
            client_id=creds.client_id,
            client_secret=creds.client_secret,
            oauth_url=creds.oauth_url,
            retry=FAST_RETRY,
        )
        portal.expire_access_tokens()
        async with client:
            outcomes = await asyncio.gather(
                *(client.call(GET, {"id": 1}) for _ in range(20)), return_exceptions=True
            )
        assert all(isinstance(o, OAuthError) for o in outcomes)
        assert {o.code for o in outcomes if isinstance(o, OAuthError)} == {"invalid_grant"}
        assert portal.stats.token_refreshes == 0


async def test_webhook_with_a_wrong_code_is_an_auth_error(portal: FakePortal) -> None:
    from bitrix_docgen_async import AuthError

    wrong = portal.webhook_url.rstrip("/").rsplit("/", 1)[0] + "/wrongcode/"
    async with DocgenClient.from_webhook(wrong) as client:
        with pytest.raises(AuthError) as caught:
            await client.call(GET, {"id": 1})
    assert caught.value.code == "NO_AUTH_FOUND"
