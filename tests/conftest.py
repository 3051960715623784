"""Shared fixtures: one way to start fake portals, one raw HTTP client, one fake clock.

``portal`` is a running :class:`FakePortal`; a test, class or module picks its options with
``@pytest.mark.portal(**options)`` (the options replace the default, generous limits), and
``fake_clock=True`` among them runs the portal on the ``clock`` fixture. ``start_portal`` starts
more portals, with any options, for tests that need several or build them mid-test; every portal
is stopped at teardown. ``http`` is a plain aiohttp session for raw calls, as the portal's own
tests make them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bitrix_docgen_async import DocgenClient, RateLimit
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY, FakeClock, PortalFactory

#: The default portal's limits: generous, so that only tests that study limits meet them.
GENEROUS = RateLimit(burst=50, per_second=50.0)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test says so."""
    return FakeClock()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A raw HTTP client; every request is bounded by 10 s."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture
async def start_portal() -> AsyncIterator[PortalFactory]:
    """Start FakePortals with any options; all of them are stopped at teardown."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**options: Any) -> FakePortal:
            return await stack.enter_async_context(FakePortal(**options))

        yield start


@pytest.fixture
async def portal(request: pytest.FixtureRequest, start_portal: PortalFactory) -> FakePortal:
    """A running portal: generous limits, or the options of the nearest ``portal`` mark."""
    mark = request.node.get_closest_marker("portal")
    options: dict[str, Any] = dict(mark.kwargs) if mark else {"rate_limit": GENEROUS}
    if options.pop("fake_clock", False):
        options["clock"] = request.getfixturevalue("clock")
    return await start_portal(**options)


@pytest.fixture
async def client(portal: FakePortal) -> AsyncIterator[DocgenClient]:
    """A webhook client paced for the default portal."""
    async with DocgenClient.from_webhook(
        portal.webhook_url, rate_limit=GENEROUS, retry=FAST_RETRY
    ) as docgen:
        yield docgen
