"""EventReceiver: token check, statuses, back-pressure, shutdown, stats, logs without secrets."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request

from bitrix_docgen_async.core.encoding import encode_query
from bitrix_docgen_async.receiver import DocumentEvent, DocumentEventType, EventReceiver
from bitrix_docgen_async.receiver import server as receiver_server
from tests.corpus import load

TOKEN = "c0ffee5e1f2a3b4c5d6e7f8091a2b3c4"  # the corpus' application token (tests/fixtures)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
COMPARE_DIGEST = hmac.compare_digest
ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


def fixture(name: str) -> dict[str, Any]:
    """A delivery of the corpus (tests/fixtures/events), decoded as PHP would decode the form."""
    loaded: dict[str, Any] = load(name)
    return loaded


def add_event(document_id: int = 214, token: str = TOKEN, **changes: Any) -> dict[str, Any]:
    payload = fixture("events/ONCRMDOCUMENTGENERATORDOCUMENTADD.form")
    payload["data"]["FIELDS"]["ID"] = str(document_id)
    payload["auth"]["application_token"] = token
    payload.update(changes)
    return payload


def body(payload: dict[str, Any]) -> bytes:
    return encode_query(payload).encode()


class Recorder:
    """A handler that records events, optionally slow or failing."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.events: list[DocumentEvent] = []
        self.delay = delay
        self.fail = fail
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, event: DocumentEvent) -> None:
        await asyncio.wait_for(self.release.wait(), timeout=10)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError(f"cannot handle document {event.document_id}")
        self.events.append(event)


@pytest.fixture
def secrets_stay_out_of_logs(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    caplog.set_level(logging.DEBUG)
    yield None
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert TOKEN not in text, record
        assert "w7e4r1t8y5u2i9o6p3a0s7d4f1g8h5j2" not in text, record  # the access token


async def client_for(
    aiohttp_client: ClientFactory, receiver: EventReceiver, path: str = "/events"
) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(receiver.app(path))


@pytest.mark.usefixtures("secrets_stay_out_of_logs")
async def test_a_signed_event_is_answered_then_handled(aiohttp_client: ClientFactory) -> None:
    handler = Recorder()
    receiver = EventReceiver(application_token=TOKEN, handler=handler)
    client = await client_for(aiohttp_client, receiver)
    response = await client.post("/events", data=body(add_event(42)), headers=FORM)
    assert (response.status, await response.text()) == (200, "OK")
    await receiver.close(timeout=5)
    assert [(e.event_type, e.document_id) for e in handler.events] == [(DocumentEventType.ADD, 42)]
    assert receiver.stats.received == receiver.stats.accepted == receiver.stats.handled == 1
    assert TOKEN not in repr(handler.events[0]) and TOKEN not in repr(receiver)


@pytest.mark.parametrize(
    ("name", "mutate"),
    [
        ("wrong token", lambda p: p["auth"].update(application_token="x" * 32)),
        ("missing token", lambda p: p["auth"].pop("application_token")),
        ("empty token", lambda p: p["auth"].update(application_token="")),
        ("one character off", lambda p: p["auth"].update(application_token=TOKEN[:-1] + "f")),
        ("first character off", lambda p: p["auth"].update(application_token="6" + TOKEN[1:])),
        ("upper case", lambda p: p["auth"].update(application_token=TOKEN.upper())),
        ("prefix", lambda p: p["auth"].update(application_token=TOKEN[:-1])),
        ("longer", lambda p: p["auth"].update(application_token=TOKEN + "0")),
        ("array", lambda p: p["auth"].update(application_token=[TOKEN])),
        ("top level", lambda p: (p.pop("auth"), p.update(application_token=TOKEN))),
        ("unicode", lambda p: p["auth"].update(application_token="ü" + TOKEN[1:])),
    ],
)
@pytest.mark.usefixtures("secrets_stay_out_of_logs")
async def test_forged_events_get_401_and_never_reach_the_handler(
    aiohttp_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    mutate: Callable[[dict[str, Any]], Any],
) -> None:
    compared: list[int] = []

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append(len(b))
        return COMPARE_DIGEST(a, b)

    monkeypatch.setattr(receiver_server.hmac, "compare_digest", compare_digest)
    handler = Recorder()
    receiver = EventReceiver(application_token=TOKEN, handler=handler)
    client = await client_for(aiohttp_client, receiver)
    payload = add_event()
    mutate(payload)
    response = await client.post("/events", data=body(payload), headers=FORM)
    assert response.status == 401, name
    await receiver.close(timeout=5)
    assert handler.events == []
    assert receiver.stats.accepted == 0 and receiver.stats.handled == 0
    reason = "bad_token" if compared else "missing_token"
    assert receiver.stats.rejected == {reason: 1}


async def test_the_token_is_compared_in_constant_time(
    aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []

    def compare_digest(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return COMPARE_DIGEST(a, b)

    monkeypatch.setattr(receiver_server.hmac, "compare_digest", compare_digest)
    receiver = EventReceiver(application_token=TOKEN, handler=Recorder())
    client = await client_for(aiohttp_client, receiver)
    for token in (TOKEN, TOKEN[:-1] + "0"):
        await client.post("/events", data=body(add_event(token=token)), headers=FORM)
    await receiver.close(timeout=5)
    wrong = TOKEN[:-1] + "0"
    assert calls == [(TOKEN.encode(), TOKEN.encode()), (wrong.encode(), TOKEN.encode())]


@pytest.mark.usefixtures("secrets_stay_out_of_logs")
async def test_other_events_are_acknowledged_and_ignored(
    aiohttp_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Recorder()
    receiver = EventReceiver(application_token=TOKEN, handler=handler)
    client = await client_for(aiohttp_client, receiver)
    for name in ("events/other/ONCRMDEALADD.form", "events/other/ONAPPINSTALL.form"):
        payload = fixture(name)
        response = await client.post("/events", data=body(payload), headers=FORM)
        assert response.status == 200
    forged = fixture("events/other/ONAPPUNINSTALL.form")
    forged["auth"]["application_token"] = "nope"
    assert (await client.post("/events", data=body(forged), headers=FORM)).status == 401
    await receiver.close(timeout=5)
    assert handler.events == []
    assert receiver.stats.rejected == {"unknown_event": 1, "bad_token": 1}
    assert receiver.stats.app_events == {"install": 1}  # the known token, installed again
    ignored = [r for r in caplog.records if "ignored event" in r.getMessage()]
    assert [r.levelno for r in ignored] == [logging.DEBUG]


@pytest.mark.usefixtures("secrets_stay_out_of_logs")
async def test_statuses_of_bad_requests(aiohttp_client: ClientFactory) -> None:
    handler = Recorder()
    receiver = EventReceiver(application_token=TOKEN, handler=handler, max_body=1024)
    client = await client_for(aiohttp_client, receiver)

    async def post(data: Any, headers: dict[str, str] | None = None) -> int:
        skip = () if headers else ("Content-Type",)
        async with client.post(
            "/events", data=data, headers=headers, skip_auto_headers=skip
        ) as response:
            return response.status

    bad_id = add_event()
    bad_id["data"]["FIELDS"]["ID"] = "abc"
    no_ts = add_event()
    del no_ts["ts"]
    assert await post(body(bad_id), FORM) == 400
    assert await post(body(no_ts), FORM) == 400
    assert await post(body(add_event()), {"Content-Type": "application/json"}) == 415
    assert await post(b"x" * 1025, FORM) == 413  # Content-Length says so

    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length, the read is capped
        for _ in range(5):
            yield b"a=" + b"b" * 300 + b"&"

    assert await post(chunks(), FORM) == 413
    assert await post(body(add_event()), None) == 200  # no Content-Type: read as a form
    assert (await client.get("/events")).status == 405  # aiohttp's route, not the handler
    await receiver.close(timeout=5)
    assert len(handler.events) == 1
    assert receiver.stats.rejected == {"malformed": 2, "content_type": 1, "too_large": 2}
    assert receiver.stats.received == 6  # the GET never reached it


async def test_handle_directly_with_mocked_requests() -> None:
    receiver = EventReceiver(application_token=TOKEN, handler=Recorder())
    get = make_mocked_request("GET", "/")
    assert (await receiver.handle(get)).status == 405
    broken = make_mocked_request("POST", "/", headers={"Content-Length": "lots"})
    assert (await receiver.handle(broken)).status == 400
    huge = make_mocked_request("POST", "/", headers={"Content-Length": str(10**12)})
    assert (await receiver.handle(huge)).status == 413
    assert receiver.stats.rejected == {"method": 1, "malformed": 1, "too_large": 1}
    await receiver.close(timeout=1)


async def test_a_slow_body_gets_408(aiohttp_client: ClientFactory) -> None:
    receiver = EventReceiver(application_token=TOKEN, handler=Recorder(), read_timeout=0.2)
    client = await client_for(aiohttp_client, receiver)

    async def trickle() -> AsyncIterator[bytes]:
        yield b"event="
        await asyncio.sleep(1.0)
        yield b"x"

    async with client.post("/events", data=trickle(), headers=FORM) as response:
        assert response.status == 408
    await receiver.close(timeout=1)
    assert receiver.stats.rejected == {"timeout": 1}


async def test_a_full_queue_answers_503(aiohttp_client: ClientFactory) -> None:
    handler = Recorder()
    handler.release.clear()
    receiver = EventReceiver(application_token=TOKEN, handler=handler, concurrency=1, queue_size=2)
    client = await client_for(aiohttp_client, receiver)
    statuses = []
    for number in range(1, 6):
        response = await client.post("/events", data=body(add_event(number)), headers=FORM)
        statuses.append(response.status)
        for _ in range(200 if number == 1 else 0):  # the worker takes the first (bounded)
            if receiver.queued == 0:
                break
            await asyncio.sleep(0.005)
    assert statuses == [200, 200, 200, 503, 503]
    assert response.headers["Retry-After"] == "1"
    handler.release.set()
    assert await receiver.close(timeout=5) == 0
    assert sorted(e.document_id for e in handler.events) == [1, 2, 3]
    assert receiver.stats.rejected == {"overloaded": 2}
    assert receiver.stats.accepted == receiver.stats.handled == 3


@pytest.mark.usefixtures("secrets_stay_out_of_logs")
async def test_handler_errors_are_logged_and_counted(
    aiohttp_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Recorder(fail=True)
    receiver = EventReceiver(application_token=TOKEN, handler=handler, concurrency=2)
    client = await client_for(aiohttp_client, receiver)
    for number in range(1, 4):
        assert (await client.post("/events", data=body(add_event(number)), headers=FORM)).ok
    await receiver.close(timeout=5)
    assert receiver.stats.handler_errors == 3 and receiver.stats.handled == 0
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 3
    assert all("RuntimeError" in r.getMessage() and r.exc_info for r in failures)


async def test_a_handler_past_its_timeout_is_an_error(aiohttp_client: ClientFactory) -> None:
    handler = Recorder(delay=5.0)
    receiver = EventReceiver(application_token=TOKEN, handler=handler, handler_timeout=0.05)
    client = await client_for(aiohttp_client, receiver)
    assert (await client.post("/events", data=body(add_event()), headers=FORM)).ok
    await receiver.close(timeout=5)
    assert receiver.stats.handler_errors == 1 and handler.events == []


async def test_close_drains_then_refuses(aiohttp_client: ClientFactory) -> None:
    handler = Recorder(delay=0.02)
    receiver = EventReceiver(application_token=TOKEN, handler=handler, concurrency=2)
    client = await client_for(aiohttp_client, receiver)
    for number in range(1, 11):
        assert (await client.post("/events", data=body(add_event(number)), headers=FORM)).ok
    assert await receiver.close(timeout=5) == 0
    assert len(handler.events) == 10 and receiver.stats.handled == 10
    response = await client.post("/events", data=body(add_event(11)), headers=FORM)
    assert response.status == 503
    assert receiver.stats.rejected == {"closing": 1}
    assert await receiver.close(timeout=1) == 0  # again: a no-op


async def test_close_is_bounded_when_the_handler_hangs(aiohttp_client: ClientFactory) -> None:
    handler = Recorder()
    handler.release.clear()  # never set: every call hangs
    receiver = EventReceiver(application_token=TOKEN, handler=handler, concurrency=2)
    client = await client_for(aiohttp_client, receiver)
    for number in range(1, 6):
        assert (await client.post("/events", data=body(add_event(number)), headers=FORM)).ok
    started = time.monotonic()
    assert await receiver.close(timeout=0.2) == 5
    assert time.monotonic() - started < 2
    assert receiver.stats.dropped == 5 and receiver.stats.handled == 0


async def test_app_cleanup_drains_the_queue() -> None:
    handler = Recorder(delay=0.01)
    receiver = EventReceiver(application_token=TOKEN, handler=handler, shutdown_timeout=5)
    runner = web.AppRunner(receiver.app("/in"), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    from aiohttp import ClientSession, ClientTimeout

    async with ClientSession(timeout=ClientTimeout(total=10)) as http:
        for number in range(1, 21):
            url = f"http://127.0.0.1:{port}/in"
            async with http.post(url, data=body(add_event(number)), headers=FORM) as response:
                assert response.status == 200
    await runner.cleanup()
    assert receiver.stats.handled == 20 and receiver.stats.dropped == 0


async def test_answers_do_not_wait_for_a_slow_handler(aiohttp_client: ClientFactory) -> None:
    handler = Recorder(delay=0.1)
    receiver = EventReceiver(application_token=TOKEN, handler=handler, concurrency=50)
    client = await client_for(aiohttp_client, receiver)
    latencies: list[float] = []
    payloads = [body(add_event(number)) for number in range(1, 201)]

    async def sender(share: list[bytes]) -> None:
        for data in share:
            started = time.perf_counter()
            async with client.post("/events", data=data, headers=FORM) as response:
                assert response.status == 200
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(sender(payloads[i::10]) for i in range(10)))
    assert await receiver.close(timeout=10) == 0
    assert receiver.stats.handled == 200
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    assert p99 < 0.5  # generous; benchmarks/receiver.py prints the real figures


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="application_token"):
        EventReceiver(application_token="", handler=Recorder())
    with pytest.raises(ValueError, match="concurrency"):
        EventReceiver(application_token=TOKEN, handler=Recorder(), concurrency=0)
    with pytest.raises(ValueError, match="path"):
        EventReceiver(application_token=TOKEN, handler=Recorder()).app("events")
