"""Shared fixtures: a fake portal on 127.0.0.1 and clients bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bitrix_docgen_async import DocgenClient, RateLimit
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY


@pytest.fixture
async def portal() -> AsyncIterator[FakePortal]:
    """A portal with generous limits (tests that study limits build their own)."""
    async with FakePortal(rate_limit=RateLimit(burst=50, per_second=50.0)) as fake:
        yield fake


@pytest.fixture
async def client(portal: FakePortal) -> AsyncIterator[DocgenClient]:
    """A webhook client paced for the portal above."""
    async with DocgenClient.from_webhook(
        portal.webhook_url, rate_limit=RateLimit(burst=50, per_second=50.0), retry=FAST_RETRY
    ) as docgen:
        yield docgen
