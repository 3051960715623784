"""Helpers shared by tests (importable as ``tests.helpers``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bitrix_docgen_async import DocgenClient, RetryPolicy
from bitrix_docgen_async.testing import FakePortal

#: The ``start_portal`` fixture: ``await start_portal(**options)`` is a running FakePortal,
#: stopped at teardown.
PortalFactory = Callable[..., Awaitable[FakePortal]]

#: Retries in tests wait milliseconds, not seconds.
FAST_RETRY = RetryPolicy(base_delay=0.005, max_delay=0.05, max_attempts=10)


class FakeClock:
    """A clock that moves only when told to: pass it as ``clock=`` wherever time is injected."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward (never backward)."""
        assert seconds >= 0, "a monotonic clock does not go back"
        self.now += seconds


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


async def post(
    http: aiohttp.ClientSession, url: str, body: Any = None, **kwargs: Any
) -> tuple[int, Any]:
    """POST ``body`` as JSON; the status and the decoded JSON answer, whatever its content type."""
    async with http.post(url, json=body if body is not None else {}, **kwargs) as response:
        return response.status, await response.json(content_type=None)
