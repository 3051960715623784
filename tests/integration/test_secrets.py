"""No secret in any log record, repr or exception text."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bitrix_docgen_async import BitrixError, DocgenClient, RateLimit
from bitrix_docgen_async.testing import FakePortal, Faults
from tests.helpers import FAST_RETRY

GET = "crm.documentgenerator.numerator.get"
ADD = "crm.documentgenerator.numerator.add"


async def test_no_secret_leaks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    faults = Faults(seed=3, html_502=0.2, drop_before=0.1)
    async with FakePortal(rate_limit=RateLimit(burst=50, per_second=50.0), faults=faults) as portal:
        good = portal.seed_numerator("x")
        creds = portal.oauth
        code = portal.webhook_url.rstrip("/").rsplit("/", 1)[1]
        secrets = [code, creds.access_token, creds.refresh_token, creds.client_secret]

        webhook = DocgenClient.from_webhook(portal.webhook_url, retry=FAST_RETRY)
        oauth = DocgenClient.from_oauth(
            client_endpoint=creds.client_endpoint,
            access_token=creds.access_token,
            refresh_token=creds.refresh_token,
            client_id=creds.client_id,
            client_secret=creds.client_secret,
            oauth_url=creds.oauth_url,
            retry=FAST_RETRY,
        )
        texts += [repr(webhook), repr(oauth), repr(webhook.auth), repr(oauth.auth)]
        for client in (webhook, oauth):
            async with client:
                portal.expire_access_tokens()
                outcomes = await asyncio.gather(
                    *(client.call(GET, {"id": good}) for _ in range(30)),
                    client.call(GET, {"id": 987654}),
                    client.call(ADD, {"fields": {"name": "n"}}),
                    return_exceptions=True,
                )
                texts += [repr(o) + str(o) for o in outcomes if isinstance(o, BaseException)]
        refreshed = oauth.auth.token
        assert refreshed is not None and refreshed != creds.access_token
        secrets.append(refreshed)

    # A transport error from a port nobody listens on, with a secret in the URL.
    dead = DocgenClient.from_webhook(f"http://127.0.0.1:9/rest/1/{code}/", retry=FAST_RETRY)
    async with dead:
        try:
            await dead.call(GET, {"id": 1})
        except BitrixError as exc:
            texts.append(repr(exc) + str(exc))
            cause = exc.__cause__ or exc.__context__
            texts.append(repr(cause))

    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    assert len(caplog.records) > 0
    for secret in secrets:
        assert len(secret) >= 8
        leaks = [t for t in texts if secret in t]
        assert not leaks, f"a secret leaked into: {leaks[:3]}"
