"""FakePortal's injected faults: every kind, what commits, and that dropping stays quiet."""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
import pytest

from bitrix_docgen_async.testing import FakePortal, Faults

ADD = "crm.documentgenerator.numerator.add"
LIST = "crm.documentgenerator.numerator.list"
FIELDS = {"fields": {"name": "N", "template": "{NUMBER}"}}


pytestmark = pytest.mark.portal(faults=Faults(slow_delay=0.2))


async def post(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, str, str]:
    async with http.post(url, json=body) as response:
        return response.status, response.content_type, await response.text()


async def test_error_500_and_html_502_execute_nothing(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    portal.faults.inject("error_500")
    portal.faults.inject("html_502")
    status, ctype, text = await post(http, portal.webhook_url + ADD, FIELDS)
    assert (status, ctype) == (500, "application/json")
    assert (
        text == '{"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}'
    )
    status, ctype, text = await post(http, portal.webhook_url + ADD, FIELDS)
    assert (status, ctype) == (502, "text/html")
    assert text.startswith("<html><head><title>502 Bad Gateway</title>")
    assert len(portal.numerators) == 0
    assert portal.stats.faults == {"error_500": 1, "html_502": 1}
    assert (await post(http, portal.webhook_url + ADD, FIELDS))[0] == 200


async def test_invalid_json_commits_then_truncates(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    portal.faults.inject("invalid_json")
    status, _, text = await post(http, portal.webhook_url + ADD, FIELDS)
    assert status == 200
    assert text.startswith('{"result"')
    with pytest.raises(ValueError):
        import json

        json.loads(text)
    assert len(portal.numerators) == 1


async def test_slow_delays_the_reply(portal: FakePortal, http: aiohttp.ClientSession) -> None:
    portal.faults.inject("slow", method=LIST)
    assert (await post(http, portal.webhook_url + ADD, FIELDS))[0] == 200
    assert portal.faults.pending() == 1  # another method: not hit (no wall-clock bound to flake)
    started = time.monotonic()
    assert (await post(http, portal.webhook_url + LIST, {}))[0] == 200
    assert time.monotonic() - started >= 0.2
    assert portal.faults.pending() == 0


@pytest.mark.parametrize(("kind", "committed"), [("drop_before", 0), ("drop_after", 1)])
async def test_dropped_connection(
    kind: str,
    committed: int,
    portal: FakePortal,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    portal.faults.inject(kind)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(http, portal.webhook_url + ADD, FIELDS)
    assert len(portal.numerators) == committed
    assert portal.stats.faults == {kind: 1}
    assert (await post(http, portal.webhook_url + ADD, FIELDS))[0] == 200  # the next one is fine
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_injection_by_method_matches_batches(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    portal.faults.inject("error_500", count=2, method=ADD.upper())
    assert (await post(http, portal.webhook_url + LIST, {}))[0] == 200
    batch = {"cmd": [f"{LIST}?start=0", f"{ADD}?fields[name]=x&fields[template]=y"]}
    assert (await post(http, portal.webhook_url + "batch", batch))[0] == 500
    assert (await post(http, portal.webhook_url + ADD, FIELDS))[0] == 500
    assert (await post(http, portal.webhook_url + ADD, FIELDS))[0] == 200
    assert portal.stats.faults == {"error_500": 2}
    with pytest.raises(ValueError):
        portal.faults.inject("meltdown")


async def test_random_faults_are_seeded_and_filtered(http: aiohttp.ClientSession) -> None:
    async def statuses(seed: int) -> list[int]:
        faults = Faults(seed=seed, error_500=0.3, html_502=0.2, methods=frozenset({LIST}))
        async with FakePortal(faults=faults) as portal:
            seen = [(await post(http, portal.webhook_url + LIST, {}))[0] for _ in range(20)]
            assert (await post(http, portal.webhook_url + ADD, FIELDS))[0] == 200
            assert sum(portal.stats.faults.values()) == sum(s != 200 for s in seen)
            return seen

    first = await statuses(7)
    assert first == await statuses(7)
    assert {200, 500, 502} <= set(first)
    with pytest.raises(ValueError):
        Faults(error_500=0.7, html_502=0.7)
