"""The transport against hostile servers (issue 11 §5, §6, §7, §10).

* §5: a redirect to plain http is refused, nothing reaches its target, the client does not move;
* §6: an HTML error page or a JSON error that echoes the request path or the token puts no
  secret into an error's text, repr or pickle, nor into a log record;
* §7: a gzip bomb stops at the size cap without the memory of its expansion, and a reply that
  drips in ends at the total deadline;
* §10: the portal's request id reaches the error.

Every server is an ``aiohttp.web`` app of the test's own on 127.0.0.1; the https one uses a
throwaway self-signed certificate made with the ``openssl`` command.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import pickle
import shutil
import ssl
import subprocess
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bitrix_docgen_async import (
    ApiError,
    BitrixTimeoutError,
    DocgenClient,
    InvalidRequestError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimit,
    RedirectError,
    ResponseError,
    Timeouts,
)
from bitrix_docgen_async.core.encoding import parse_str
from bitrix_docgen_async.transport import AiohttpTransport
from tests.helpers import FAST_RETRY

GET = "crm.documentgenerator.numerator.get"
ADD = "crm.documentgenerator.numerator.add"
LIST = "crm.documentgenerator.numerator.list"
FAST = RateLimit(burst=50, per_second=50.0)
CODE = "k3j4h5g6f7d8s9a0"
ACCESS = "e8a4f1660000071b00717e7e00000001000007d3c2d0c9b1a5a1ee7d2d7a43c4a9ab38"
REFRESH = "d7b3e0550000071b00717e7e00000001000007a1b2c3d4e5f60718293a4b5c6d7e8f90"
SECRET = "Zq8Xw2Vn5Lm0Kp7Jr4Ht1Gs6Fd9Sa3Qe"
SECRETS = (CODE, ACCESS, REFRESH, SECRET)


@asynccontextmanager
async def serve(
    app: web.Application, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1 on a free port; yield its base URL."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    scheme = "https" if ssl_context is not None else "http"
    try:
        yield f"{scheme}://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def app_of(handler: Any) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def webhook_client(base: str, **options: Any) -> DocgenClient:
    options = {"rate_limit": FAST, "retry": FAST_RETRY, "linger": 0, **options}
    return DocgenClient.from_webhook(f"{base}/rest/1/{CODE}/", **options)


def oauth_client(base: str, **options: Any) -> DocgenClient:
    options = {"rate_limit": FAST, "retry": FAST_RETRY, "linger": 0, **options}
    return DocgenClient.from_oauth(
        client_endpoint=f"{base}/rest/",
        access_token=ACCESS,
        refresh_token=REFRESH,
        client_id="local.app.1",
        client_secret=SECRET,
        oauth_url=f"{base}/oauth/token/",
        **options,
    )


def assert_no_secret(*errors: BaseException) -> None:
    for error in errors:
        texts = [str(error), repr(error), repr(vars(error))]
        cause = getattr(error, "cause", None)
        if isinstance(cause, BaseException):
            texts += [str(cause), repr(cause), repr(vars(cause))]
        blob = pickle.dumps(error)
        for secret in SECRETS:
            assert not [t for t in texts if secret in t], f"{secret[:4]}... leaked: {texts}"
            assert secret.encode() not in blob, f"{secret[:4]}... in the pickle of {error!r}"


def assert_no_secret_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert caplog.records, "nothing was logged: the check would prove nothing"
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "")
        for secret in SECRETS:
            assert secret not in text, f"{secret[:4]}... logged: {text}"


# -- §5 redirects ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (key, cert)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return key, cert


@asynccontextmanager
async def https_redirecting_to(
    certificate: tuple[Path, Path], target: str
) -> AsyncIterator[tuple[str, list[str]]]:
    """An https portal answering every request with a 302 to ``target`` + the same path."""
    key, cert = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    seen: list[str] = []

    async def moved(request: web.Request) -> web.StreamResponse:
        await request.read()
        seen.append(request.method)
        return web.Response(status=302, headers={"Location": target + request.path_qs})

    async with serve(app_of(moved), server_tls) as base:
        yield base, seen


def trusting(certificate: tuple[Path, Path]) -> aiohttp.ClientSession:
    tls = ssl.create_default_context(cafile=str(certificate[1]))
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls))


async def recorder() -> tuple[web.Application, list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        received.append({"path": request.path, "body": await request.read()})
        return web.json_response({"result": {"numerator": {"id": 1}}, "time": {}})

    return app_of(record), received


@pytest.mark.parametrize("kind", ["webhook", "oauth"])
async def test_an_https_portal_redirecting_to_plain_http_is_not_followed(
    certificate: tuple[Path, Path], kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app, received = await recorder()
    make = webhook_client if kind == "webhook" else oauth_client
    async with (
        serve(app) as plain,
        https_redirecting_to(certificate, plain) as (base, seen),
        trusting(certificate) as http_session,
        make(base, http_session=http_session) as client,
    ):
        with pytest.raises(RedirectError) as read:
            await asyncio.wait_for(client.call(GET, {"id": 1}), 5)
        # A write is refused as plainly: the 302 means it did not run (not "unknown").
        with pytest.raises(RedirectError) as write:
            await asyncio.wait_for(client.call(ADD, {"fields": {"name": "n"}}), 5)
        assert client.auth.origin == base  # not rebased to the http host
    assert received == []  # neither the webhook path nor the token went out in clear
    assert seen == ["POST", "POST"]  # each sent once: a refused redirect is not retried
    assert read.value.origin == base and read.value.target == plain
    assert "plain http" in str(read.value)
    assert_no_secret(read.value, write.value)
    assert_no_secret_logged(caplog)


async def test_a_redirect_to_https_on_another_host_is_followed(
    certificate: tuple[Path, Path],
) -> None:
    key, cert = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    app, received = await recorder()
    async with (
        serve(app, server_tls) as new,
        https_redirecting_to(certificate, new) as (old, _),
        trusting(certificate) as http_session,
        webhook_client(old, http_session=http_session) as client,
    ):
        assert await client.call(GET, {"id": 1}) == {"numerator": {"id": 1}}
        assert client.auth.origin == new  # the portal moved (protocol.md §1.1)
    assert [r["path"] for r in received] == [f"/rest/1/{CODE}/{GET}"]
    assert parse_str(received[0]["body"]) == {"id": "1"}  # the same POST, body and all


async def test_a_local_portal_redirecting_off_the_machine_over_http_is_refused() -> None:
    async def moved(request: web.Request) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": "http://other-host.invalid/x"})

    async with serve(app_of(moved)) as base:
        transport = AiohttpTransport()
        await transport.open()
        try:
            with pytest.raises(RedirectError) as caught:
                await transport.post_json(f"{base}/rest/1/{CODE}/{GET}", {"id": 1})
        finally:
            await transport.close()
    # Refused before any connection: following it would have been a DNS failure instead.
    assert caught.value.target == "http://other-host.invalid"
    assert_no_secret(caught.value)


async def test_a_download_follows_only_safe_redirects() -> None:
    async def file(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"%PDF-1.4 ...", content_type="application/pdf")

    files = web.Application()
    files.router.add_get("/file", file)
    async with serve(files) as storage:

        async def machine(request: web.Request) -> web.StreamResponse:
            where = storage if request.query.get("to") == "local" else "http://cdn.invalid"
            return web.Response(status=302, headers={"Location": f"{where}/file"})

        async with serve(app_of(machine)) as base:
            transport = AiohttpTransport()
            await transport.open()
            try:
                sink = io.BytesIO()
                status, head = await transport.download(
                    f"{base}/pdf?token={ACCESS}&to=local", sink, {}
                )
                assert (status, sink.getvalue()) == (200, b"%PDF-1.4 ...")
                assert head["content-type"] == "application/pdf"
                with pytest.raises(RedirectError) as caught:
                    await transport.download(f"{base}/pdf?token={ACCESS}", io.BytesIO(), {})
            finally:
                await transport.close()
    assert_no_secret(caught.value)


# -- §6 secrets quoted by the server --------------------------------------------------------------


async def echoing(request: web.Request) -> web.StreamResponse:
    """Answers like a careless proxy or portal: the path and the token come back in the text."""
    body = await request.read()
    token = (parse_str(body) if body else {}).get("auth", "")
    method = request.path.rsplit("/", 1)[1]
    url = str(request.url)
    headers = {"x-bitrix-ri": "7c1d2e3f4a5b"}
    if method == GET:
        page = f"<html><head><title>502 Bad Gateway {request.path}</title></head><body>{url}"
        return web.Response(status=502, text=page, content_type="text/html", headers=headers)
    if method == ADD:
        page = f"<html><head><title>504 {request.path}</title></head></html>"
        return web.Response(status=504, text=page, content_type="text/html", headers=headers)
    if method == "batch":
        echo = {"error": "100", "error_description": f"Failed: {url} auth {token}"}
        errors = {key: echo for key in parse_str(body)["cmd"]}
        result = {"result": [], "result_error": errors, "result_total": [], "result_next": []}
        return web.json_response({"result": result, "time": {}}, headers=headers)
    error = {
        "error": "INVALID_REQUEST",
        "error_description": f"Wrong request {url} with auth={token} ({token}) {request.path}",
    }
    return web.json_response(error, status=400, headers=headers)


async def _caught(call: Awaitable[Any]) -> BaseException:
    try:
        await call
    except BaseException as exc:
        return exc
    raise AssertionError("the call succeeded")


@pytest.mark.parametrize("kind", ["webhook", "oauth"])
async def test_no_secret_in_errors_from_pages_that_echo_the_request(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve(app_of(echoing)) as base:
        make = webhook_client if kind == "webhook" else oauth_client
        async with make(base) as client:
            read, write, final = [
                await asyncio.wait_for(call, 10)
                for call in (
                    _caught(client.call(GET, {"id": 1})),
                    _caught(client.call(ADD, {"fields": {"name": "n"}})),
                    _caught(client.call(LIST, {})),
                )
            ]
            batched = await asyncio.wait_for(
                asyncio.gather(
                    *(client.call(LIST, {"start": 50 * i}) for i in range(3)),
                    return_exceptions=True,
                ),
                10,
            )
    assert isinstance(read, ResponseError) and read.status == 502
    assert "an HTML page (text/html" in str(read)
    assert isinstance(write, OutcomeUnknownError) and isinstance(write.cause, ResponseError)
    assert isinstance(final, ApiError) and final.code == "INVALID_REQUEST"
    assert "<URL>" in final.description and "<path>" in final.description
    if kind == "oauth":
        assert "auth=*** (***)" in final.description
    assert final.request_id == "7c1d2e3f4a5b"
    assert client.stats.batches == 1
    assert [type(e) for e in batched] == [InvalidRequestError] * 3
    assert all(isinstance(e, ApiError) and e.request_id == "7c1d2e3f4a5b" for e in batched)
    assert_no_secret(read, write, final, *batched)
    assert_no_secret_logged(caplog)


# -- §7 unbounded replies -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """gzip of 50 MiB of zeros (about 50 KiB), built a MiB at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    parts = [packer.compress(zeros) for _ in range(50)]
    parts.append(packer.flush())
    return b"".join(parts)


async def _post(base: str, timeouts: Timeouts) -> Any:
    transport = AiohttpTransport(timeouts=timeouts)
    await transport.open()
    try:
        return await transport.post_json(f"{base}/rest/1/{CODE}/{GET}", {"id": 1})
    finally:
        await transport.close()


async def test_a_gzip_bomb_stops_at_the_cap_without_its_memory(gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < 100_000

    async def bomb(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        return web.Response(body=gzip_bomb, headers=headers)

    cap = 1 << 20
    async with serve(app_of(bomb)) as base:
        tracemalloc.start()
        started = time.perf_counter()
        try:
            with pytest.raises(ResponseError) as caught:
                await _post(base, Timeouts(max_reply_bytes=cap))
            elapsed = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert "too large" in str(caught.value) and str(cap) in str(caught.value)
    assert caught.value.status == 200
    # The cap plus a few inflated chunks, never the 50 MiB the reply expands to.
    assert peak < 8 * cap, f"peak {peak / 2**20:.1f} MiB"
    assert elapsed < 5.0


async def test_a_compressed_reply_under_the_cap_is_read_whole() -> None:
    rows = [{"id": i, "name": f"numerator {i}", "template": "{NUMBER}"} for i in range(8000)]
    payload = json.dumps({"result": {"numerators": rows}}).encode()
    assert 300_000 < len(payload) < 1 << 20

    async def compressed(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        return web.Response(body=zlib.compress(payload, wbits=31), headers=headers)

    async with serve(app_of(compressed)) as base:
        response = await _post(base, Timeouts(max_reply_bytes=1 << 20))
    assert response.body == payload


async def test_a_declared_length_over_the_cap_is_refused_unread() -> None:
    sent: list[int] = []

    async def huge(request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse(headers={"Content-Type": "application/json"})
        reply.content_length = 64 << 20
        await reply.prepare(request)
        try:
            for _ in range(64):
                await reply.write(b" " * (1 << 20))
                sent.append(1)
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass
        return reply

    async with serve(app_of(huge)) as base:
        started = time.perf_counter()
        with pytest.raises(ResponseError, match="too large"):
            await _post(base, Timeouts(max_reply_bytes=1 << 20))
        assert time.perf_counter() - started < 5.0
    assert len(sent) < 64  # the client hung up instead of reading it all


async def test_a_dripping_reply_ends_at_the_total_deadline() -> None:
    async def drip(request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse(headers={"Content-Type": "application/json"})
        reply.content_length = 1000
        await reply.prepare(request)
        try:
            for _ in range(100):  # 10 s at most, should the client not hang up
                await reply.write(b" ")
                await asyncio.sleep(0.1)
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass
        return reply

    async with serve(app_of(drip)) as base:
        started = time.perf_counter()
        # Each byte comes well within the read timeout: only the total deadline can end it.
        with pytest.raises(BitrixTimeoutError) as caught:
            await _post(base, Timeouts(read=0.3, total=0.5))
        elapsed = time.perf_counter() - started
        assert 0.4 < elapsed < 2.0, elapsed
        assert_no_secret(caught.value)

        # Through the client: a write so caught is an unknown outcome, reported at once.
        async with webhook_client(base, timeouts=Timeouts(read=0.3, total=0.5)) as client:
            started = time.perf_counter()
            with pytest.raises(OutcomeUnknownError) as unknown:
                await client.call(ADD, {"fields": {"name": "n"}})
            assert time.perf_counter() - started < 2.0
        assert isinstance(unknown.value.cause, BitrixTimeoutError)


def test_timeouts_are_checked() -> None:
    assert Timeouts().total > Timeouts().read > 60.0
    assert Timeouts().max_reply_bytes == 64 << 20
    for bad in ({"total": 0}, {"read": -1.0}, {"max_reply_bytes": 0}, {"connect": True}):
        with pytest.raises(ValueError, match="Timeouts"):
            Timeouts(**bad)


# -- §10 the request id ---------------------------------------------------------------------------


async def test_the_portal_request_id_reaches_direct_and_batched_errors() -> None:
    async def portal(request: web.Request) -> web.StreamResponse:
        body = parse_str(await request.read())
        headers = {"X-Bitrix-RI": "ri-" + request.path.rsplit("/", 1)[1].replace(".", "-")}
        if request.path.endswith("/batch"):
            errors = {
                key: {"error": "", "error_description": "Numerator not found"}
                for key in body["cmd"]
            }
            result = {"result": [], "result_error": errors, "result_total": [], "result_next": []}
            return web.json_response({"result": result, "time": {}}, headers=headers)
        error = {"error": "", "error_description": "Numerator not found"}
        return web.json_response(error, status=400, headers=headers)

    async with serve(app_of(portal)) as base, webhook_client(base, linger=0.05) as client:
        with pytest.raises(NotFoundError) as direct:
            await client.call(GET, {"id": 1})
        batched = await asyncio.gather(
            *(client.call(GET, {"id": i}) for i in range(3)), return_exceptions=True
        )
        async with client.batch() as explicit:
            one = explicit.call(GET, {"id": 9})
        with pytest.raises(NotFoundError) as in_explicit:
            one.result()
    assert direct.value.request_id == f"ri-{GET.replace('.', '-')}"
    assert [type(e) for e in batched] == [NotFoundError] * 3
    assert {e.request_id for e in batched if isinstance(e, ApiError)} == {"ri-batch"}
    assert in_explicit.value.request_id == "ri-batch"
