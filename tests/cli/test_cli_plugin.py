"""The pytest plugin's fixtures, exercised in a pytester sandbox."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

PLUGIN = "bitrix_docgen_async.testing.plugin"

USES_FIXTURES = """
import pytest
from bitrix_docgen_async import DocgenClient
from bitrix_docgen_async.testing import FakePortal

@pytest.mark.asyncio
async def test_generate(fake_portal: FakePortal, docgen_client: DocgenClient) -> None:
    template = fake_portal.seed_template("Invoice")
    doc = await docgen_client.documents.add(template, 2, 10, values={"Comment": "x"})
    [ready] = await docgen_client.documents.wait_for_pdf([doc], timeout=5)
    assert ready.pdf_ready and ready.entity_id == 10
    assert fake_portal.documents[doc.id]["entityId"] == "10"
    assert fake_portal.webhook_url.startswith("http://127.0.0.1:")

@pytest.mark.asyncio
@pytest.mark.fake_portal(pdf_failure_rate=1.0)
async def test_marker(fake_portal: FakePortal, docgen_client: DocgenClient) -> None:
    template = fake_portal.seed_template()
    doc = await docgen_client.documents.add(template, 2, 1)
    [done] = await docgen_client.documents.wait_for_pdf([doc], timeout=5)
    assert done.pdf_failed

@pytest.mark.asyncio
async def test_fresh_portal_per_test(fake_portal: FakePortal) -> None:
    assert len(fake_portal.documents) == 0

# The project's own fixtures of the usual names are untouched.
@pytest.fixture
def portal() -> str:
    return "mine"

@pytest.fixture
def client() -> str:
    return "mine too"

def test_own_fixtures(portal: str, client: str) -> None:
    assert (portal, client) == ("mine", "mine too")
"""


def test_fixtures_in_strict_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_FIXTURES)
    result = pytester.runpytest_subprocess(
        "-p", PLUGIN, "-p", "no:cacheprovider", "-o", "asyncio_mode=strict",
        "-o", "asyncio_default_fixture_loop_scope=function", "-W", "error", "--strict-markers",
    )  # fmt: skip
    result.assert_outcomes(passed=4)


def test_options_fixtures_override_the_defaults(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        f"""
import pytest
from bitrix_docgen_async import RetryPolicy

pytest_plugins = ["{PLUGIN}"]

@pytest.fixture
def fake_portal_options():
    return {{"pdf_delay": 30.0}}

@pytest.fixture
def docgen_client_options():
    return {{"retry": RetryPolicy(max_attempts=2)}}
"""
    )
    pytester.makepyfile(
        """
import pytest

async def test_options(fake_portal, docgen_client):
    template = fake_portal.seed_template()
    doc = await docgen_client.documents.get(fake_portal.seed_document(template))
    assert not doc.pdf_ready  # 30 s to convert
    assert docgen_client.session.retry.max_attempts == 2

@pytest.mark.fake_portal(pdf_delay=0.0)
async def test_the_marker_wins(fake_portal, docgen_client):
    template = fake_portal.seed_template()
    doc = await docgen_client.documents.get(fake_portal.seed_document(template))
    assert doc.pdf_ready
"""
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-o", "asyncio_mode=auto",
        "-o", "asyncio_default_fixture_loop_scope=function", "-W", "error",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
