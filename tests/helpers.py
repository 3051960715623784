"""Constants shared by tests (importable as ``tests.helpers``)."""

from __future__ import annotations

from typing import Any

from bitrix_docgen_async import DocgenClient, RetryPolicy
from bitrix_docgen_async.testing import FakePortal

#: Retries in tests wait milliseconds, not seconds.
FAST_RETRY = RetryPolicy(base_delay=0.005, max_delay=0.05, max_attempts=10)


def oauth_client(portal: FakePortal, **options: Any) -> DocgenClient:
    """A client authorised as the fake portal's OAuth application."""
    creds = portal.oauth
    return DocgenClient.from_oauth(
        client_endpoint=creds.client_endpoint,
        access_token=creds.access_token,
        refresh_token=creds.refresh_token,
        client_id=creds.client_id,
        client_secret=creds.client_secret,
        oauth_url=creds.oauth_url,
        **options,
    )
