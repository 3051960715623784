"""The HTTP transport as seen from a client: portal moves, headers, sessions, timeouts, refusals.

Every server here listens on 127.0.0.1: the fake portal, or a small ``aiohttp.web`` app of the
test's own (an old portal address answering 302, a server recording what it receives).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bitrix_docgen_async import (
    BitrixTimeoutError,
    ConnectError,
    DocgenClient,
    OutcomeUnknownError,
    RateLimit,
    Timeouts,
    TransportError,
    __version__,
)
from bitrix_docgen_async.core.encoding import parse_str
from bitrix_docgen_async.testing import FakePortal, Faults
from tests.helpers import FAST_RETRY

GET = "crm.documentgenerator.numerator.get"
ADD = "crm.documentgenerator.numerator.add"
LIST = "crm.documentgenerator.numerator.list"
FAST = RateLimit(burst=50, per_second=50.0)


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1 on a free port; yield its base URL."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def eventually(condition: Callable[[], bool], within: float = 2.0) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def _time_block() -> dict[str, Any]:
    now = time.time()
    return {"start": now, "finish": now + 0.001, "duration": 0.001, "processing": 0.001}


def free_port() -> int:
    """A port on 127.0.0.1 with no listener (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- 1. a portal that moved -----------------------------------------------------------------------


async def test_a_moved_portal_gets_the_same_post_and_later_calls_go_straight_there(
    portal: FakePortal,
) -> None:
    seen: list[tuple[str, str]] = []

    async def moved(request: web.Request) -> web.StreamResponse:
        seen.append((request.method, request.path))
        return web.Response(status=302, headers={"Location": portal.base_url + request.path_qs})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", moved)
    nid = portal.seed_numerator("existing")
    async with serve(app) as old_base:
        old_url = f"{old_base}/rest/1/{portal.webhook_code}/"
        async with DocgenClient.from_webhook(
            old_url, rate_limit=FAST, retry=FAST_RETRY, linger=0
        ) as client:
            assert client.auth.origin == old_base
            # The body holds the parameters: had the 302 turned the POST into a bodiless GET,
            # the portal would not know which numerator, or which name, was meant.
            got = await client.call(GET, {"id": nid})
            assert int(got["numerator"]["id"]) == nid
            assert client.auth.origin == portal.base_url
            added = await client.call(ADD, {"fields": {"name": "moved", "template": "{NUMBER}"}})
            together = await asyncio.gather(*(client.call(GET, {"id": nid}) for _ in range(5)))
        assert [int(r["numerator"]["id"]) for r in together] == [nid] * 5
    assert [n["name"] for n in portal.numerators.values()] == ["existing", "moved"]
    assert portal.numerators[added["numerator"]["id"]]["name"] == "moved"
    # The old address saw the very first request only; it was a POST to the same path.
    assert seen == [("POST", f"/rest/1/{portal.webhook_code}/{GET}")]
    assert portal.stats.http_by_method[GET] == 1
    assert portal.stats.http_by_method[ADD] == 1
    assert portal.stats.http_by_method["batch"] == 1
    assert client.stats.http_requests == portal.stats.requests == 3


# -- 2. headers -----------------------------------------------------------------------------------


async def test_every_request_carries_user_agent_and_form_content_type() -> None:
    received: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        received.append(
            {
                "method": request.method,
                "path": request.path,
                "headers": dict(request.headers),
                "body": parse_str(body),
            }
        )
        if request.path.endswith("/batch"):
            keys = list(parse_str(body)["cmd"])
            result: Any = {
                "result": {key: {"ok": key} for key in keys},
                "result_error": [],
                "result_total": [],
                "result_next": [],
                "result_time": {key: _time_block() for key in keys},
            }
        else:
            result = {"ok": "direct"}
        return web.json_response({"result": result, "time": _time_block()})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    async with serve(app) as base:
        async with DocgenClient.from_webhook(
            f"{base}/rest/1/secretcode/", rate_limit=FAST, retry=FAST_RETRY
        ) as client:
            assert await client.call(GET, {"id": 1}) == {"ok": "direct"}
            results = await asyncio.gather(*(client.call(GET, {"id": i}) for i in range(3)))
            assert [r["ok"] for r in results] == ["c0", "c1", "c2"]
        async with DocgenClient.from_oauth(
            client_endpoint=f"{base}/rest/",
            access_token="access",
            refresh_token="refresh",
            client_id="app",
            client_secret="secret",
            oauth_url=f"{base}/oauth/token/",
            rate_limit=FAST,
        ) as oauth_client:
            assert await oauth_client.call(LIST) == {"ok": "direct"}

    assert [(r["method"], r["path"].rsplit("/", 1)[1]) for r in received] == [
        ("POST", GET),
        ("POST", "batch"),
        ("POST", LIST),
    ]
    for request in received:
        headers = request["headers"]
        assert headers["User-Agent"] == f"bitrix_docgen_async/{__version__}"
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert headers["Accept"] == "application/json"
    assert received[0]["body"] == {"id": "1"}
    assert received[2]["body"] == {"auth": "access"}


# -- 3. whose aiohttp session ---------------------------------------------------------------------


async def test_a_supplied_http_session_is_used_and_left_open(portal: FakePortal) -> None:
    nid = portal.seed_numerator("x")
    started: list[str] = []

    async def on_request_start(
        _session: aiohttp.ClientSession, _ctx: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        started.append(params.method)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as http:
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, http_session=http
        ) as client:
            assert client.session.transport.session is http
            await client.call(GET, {"id": nid})
        assert not http.closed
        assert started == ["POST"]
        # Still usable, by the caller and by another client.
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, http_session=http
        ) as again:
            await again.call(GET, {"id": nid})
        assert not http.closed
        assert started == ["POST", "POST"]
    assert http.closed


async def test_a_client_created_http_session_is_closed_on_exit(portal: FakePortal) -> None:
    nid = portal.seed_numerator("x")
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        http = client.session.transport.session
        assert not http.closed
        await client.call(GET, {"id": nid})
    assert http.closed


# -- 4. timeouts ----------------------------------------------------------------------------------


async def test_default_timeouts_let_the_portal_end_a_slow_call(portal: FakePortal) -> None:
    defaults = Timeouts()
    assert defaults.read == 90.0
    assert defaults.read > portal.request_time_cap == 60.0
    assert defaults.connect is not None and 0 < defaults.connect < defaults.read
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        applied = client.session.transport.session.timeout
    assert applied.sock_read == 90.0
    assert applied.connect == defaults.connect
    # A batch of renders may legitimately take the whole 60 s, and then the read timeout on top:
    # the total deadline (issue 11 §7) only ends a reply that keeps trickling in after both.
    assert applied.total == defaults.total > portal.request_time_cap + defaults.read


async def test_a_slow_write_reports_an_unknown_outcome_after_the_read_timeout() -> None:
    faults = Faults(slow_delay=0.5)
    async with FakePortal(rate_limit=FAST, faults=faults) as portal:
        faults.inject("slow", method=ADD)
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY, timeouts=Timeouts(read=0.2)
        ) as client:
            started = time.perf_counter()
            with pytest.raises(OutcomeUnknownError) as caught:
                await client.call(ADD, {"fields": {"name": "slow", "template": "{NUMBER}"}})
            waited = time.perf_counter() - started
        assert isinstance(caught.value.cause, BitrixTimeoutError)
        assert caught.value.method == ADD
        assert 0.15 < waited < 0.45  # the client's read timeout, not the portal's reply
        assert portal.stats.http_by_method[ADD] == 1  # not retried
        assert client.stats.retries == 0
        # Rightly "unknown": the portal went on and committed it.
        await eventually(lambda: len(portal.numerators) == 1)


async def test_a_slow_read_is_retried_after_the_read_timeout() -> None:
    faults = Faults(slow_delay=0.5)
    async with FakePortal(rate_limit=FAST, faults=faults) as portal:
        nid = portal.seed_numerator("x")
        faults.inject("slow", method=GET)
        async with DocgenClient.from_webhook(
            portal.webhook_url, rate_limit=FAST, retry=FAST_RETRY, timeouts=Timeouts(read=0.2)
        ) as client:
            started = time.perf_counter()
            result = await client.call(GET, {"id": nid})
            waited = time.perf_counter() - started
            assert int(result["numerator"]["id"]) == nid
            assert client.stats.retries == 1
            assert waited < 0.45  # did not wait for the slow reply
            await eventually(lambda: portal.stats.by_method[GET] == 2)  # the slow one finishes
        assert portal.stats.http_by_method[GET] == 2


# -- 5. connection refused ------------------------------------------------------------------------


async def test_a_refused_connection_is_a_transport_error_without_the_url_path() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    async with DocgenClient.from_webhook(
        f"{base}/rest/1/secretcode/", rate_limit=FAST, retry=FAST_RETRY, linger=0
    ) as client:
        with pytest.raises(TransportError) as caught:
            await asyncio.wait_for(client.call(GET, {"id": 1}), 5.0)
    message = str(caught.value)
    # Named as host:port with the count of tries (issue 11 §10) ...
    tries = FAST_RETRY.max_attempts + 1
    assert f"connection refused to {base.removeprefix('http://')} after {tries} attempts" in message
    assert isinstance(caught.value, ConnectError) and caught.value.attempts == tries
    assert "secretcode" not in message  # ... the path (and its webhook code) is not
    assert "/rest" not in message
    assert GET not in message
    assert "secretcode" not in repr(caught.value)
    assert client.stats.retries == FAST_RETRY.max_attempts  # a read: retried, then given up
    assert client.stats.http_requests == 0


async def test_a_refused_connection_of_a_write_is_a_transport_error() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    async with DocgenClient.from_webhook(
        f"{base}/rest/1/secretcode/", rate_limit=FAST, retry=FAST_RETRY, linger=0
    ) as client:
        with pytest.raises(TransportError) as caught:
            await asyncio.wait_for(
                client.call(ADD, {"fields": {"name": "n", "template": "{NUMBER}"}}), 5.0
            )
    assert "secretcode" not in str(caught.value)
