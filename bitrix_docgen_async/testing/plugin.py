"""A pytest plugin: a fake Bitrix24 portal and a client bound to it, as fixtures.

Installed with the package, pytest loads it by itself (entry point ``pytest11``); it can also be
loaded explicitly with ``-p bitrix_docgen_async.testing.plugin`` or
``pytest_plugins = ["bitrix_docgen_async.testing.plugin"]``. The fixtures are async and need
pytest-asyncio::

    import pytest
    from bitrix_docgen_async import DocgenClient
    from bitrix_docgen_async.testing import FakePortal

    @pytest.mark.asyncio  # not needed with asyncio_mode = "auto"
    async def test_invoice(fake_portal: FakePortal, docgen_client: DocgenClient) -> None:
        template = fake_portal.seed_template("Invoice")
        doc = await docgen_client.documents.add(template, 2, 10, values={"Comment": "x"})
        [ready] = await docgen_client.documents.wait_for_pdf([doc], timeout=5)
        assert ready.pdf_ready and ready.entity_id == 10
        assert len(fake_portal.documents) == 1  # the portal's state, for assertions

Fixtures:

* ``fake_portal``: a started :class:`FakePortal` on 127.0.0.1 with limits fast enough for
  tests: a request bucket of 50 at 100 per second, the operating budget scaled 1:100
  (4.8 s per 6 s, calls under 0.001 s not billed, a batch billed to ``batch``), no execution
  cost, PDFs ready 0.1 s after a document is created. Closed after the test.
* ``docgen_client``: an open :class:`DocgenClient` for its webhook, paced for those limits,
  polling PDFs from 0.1 s on, with retries that wait milliseconds.
* ``fake_portal_options`` / ``docgen_client_options``: override them (in a ``conftest.py`` or a
  module) to change the keyword arguments of ``FakePortal(...)`` or
  ``DocgenClient.from_webhook(...)``; the marker ``@pytest.mark.fake_portal(**options)`` does
  the same for one test, e.g. ``@pytest.mark.fake_portal(pdf_delay=2.0, pdf_failure_rate=0.5)``.

No fixture here is named ``portal`` or ``client``, so a project's own fixtures of those names
are left alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bitrix_docgen_async.client import DocgenClient
from bitrix_docgen_async.core.pdf import PollSchedule
from bitrix_docgen_async.core.ratelimit import OperatingBudget, RateLimit
from bitrix_docgen_async.core.retry import RetryPolicy
from bitrix_docgen_async.testing.portal import FakePortal

__all__ = [
    "CLIENT_DEFAULTS",
    "PORTAL_DEFAULTS",
    "docgen_client",
    "docgen_client_options",
    "fake_portal",
    "fake_portal_options",
]

_RATE = RateLimit(burst=50, per_second=100.0)
_BUDGET = OperatingBudget(limit_s=4.8, window_s=6.0)

#: ``FakePortal`` keyword arguments of the ``fake_portal`` fixture.
PORTAL_DEFAULTS: dict[str, Any] = {
    "rate_limit": _RATE,
    "operating_budget": _BUDGET,
    # The live portal's 0.1 s floor, scaled as the budget is (docs/portal.md#how-batch-is-billed).
    "operating_floor": 0.001,
    "pdf_delay": 0.1,
}
#: ``DocgenClient.from_webhook`` keyword arguments of the ``docgen_client`` fixture.
CLIENT_DEFAULTS: dict[str, Any] = {
    "rate_limit": _RATE,
    "operating_budget": _BUDGET,
    "pdf_schedule": PollSchedule(min_conversion=0.1, interval=0.05),
    "retry": RetryPolicy(base_delay=0.005, max_delay=0.05, max_attempts=10),
}

_MARKER = "fake_portal"

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the fixtures then explain what is missing
    pytest_asyncio = None  # type: ignore[assignment]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``fake_portal`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): FakePortal keyword arguments for the fake_portal fixture",
    )


@pytest.fixture
def fake_portal_options() -> dict[str, Any]:
    """Extra ``FakePortal`` keyword arguments (override this fixture to change them)."""
    return {}


@pytest.fixture
def docgen_client_options() -> dict[str, Any]:
    """Extra ``DocgenClient.from_webhook`` keyword arguments (override to change them)."""
    return {}


def _portal_options(request: pytest.FixtureRequest, extra: dict[str, Any]) -> dict[str, Any]:
    options = {**PORTAL_DEFAULTS, **extra}
    for marker in reversed(list(request.node.iter_markers(_MARKER))):
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{_MARKER} takes keyword arguments only")
        options.update(marker.kwargs)
    return options


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def fake_portal(
        request: pytest.FixtureRequest, fake_portal_options: dict[str, Any]
    ) -> AsyncIterator[FakePortal]:
        """A started fake portal with fast limits (see the module's docstring)."""
        async with FakePortal(**_portal_options(request, fake_portal_options)) as portal:
            yield portal

    @pytest_asyncio.fixture
    async def docgen_client(
        fake_portal: FakePortal, docgen_client_options: dict[str, Any]
    ) -> AsyncIterator[DocgenClient]:
        """An open client for ``fake_portal``'s webhook."""
        options = {**CLIENT_DEFAULTS, **docgen_client_options}
        async with DocgenClient.from_webhook(fake_portal.webhook_url, **options) as client:
            yield client

else:  # pragma: no cover - exercised only without pytest-asyncio

    @pytest.fixture
    def fake_portal() -> FakePortal:
        """Unavailable: pytest-asyncio is not installed."""
        pytest.fail("the fake_portal fixture needs pytest-asyncio: pip install pytest-asyncio")

    @pytest.fixture
    def docgen_client() -> DocgenClient:
        """Unavailable: pytest-asyncio is not installed."""
        pytest.fail("the docgen_client fixture needs pytest-asyncio: pip install pytest-asyncio")
