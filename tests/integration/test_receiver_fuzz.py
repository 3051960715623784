"""Fuzzing the receiver: thousands of random bodies, headers and content types, never a 5xx.

A seeded generator (so a failure replays) mixes valid events with mutations, random bytes,
truncated percent-escapes, deep bracket nesting, huge keys, odd content types and encodings.
They go through a real aiohttp server (``aiohttp_client``) and, for headers a client will not
send, straight into ``receiver.handle`` with ``make_mocked_request``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from unittest import mock

import pytest
from aiohttp import StreamReader, web
from aiohttp.test_utils import TestClient, make_mocked_request

from bitrix_docgen_async.core.encoding import encode_query
from bitrix_docgen_async.receiver import DocumentEvent, EventReceiver

TOKEN = "51856fefc120afa4b628cc82d3935cce"
MAX_BODY = 64 * 1024
ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=UTF-8",
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "application/x-www-form-urlencoded;;;=;charset",
    "application/json",
    "multipart/form-data; boundary=xyz",
    "text/plain",
    "*/*",
    'a/b; c="d',
    ";",
    "",
    None,  # no Content-Type header at all
]
PIECES = ["%", "%4", "%G", "%%", "%2", "%5B", "%5D", "[", "]", "[]", "[ ]", "&", "=", "+", "&&",
          "==", "event", "data", "FIELDS", "ID", "auth", "application_token", "ts", "\u00fc",
          "\u20ac", "%00", "%FF", "%C3", "0", "-1", "99999999999999999999", " ", ".",
          "__Host-"]  # fmt: skip


def valid_payload(rng: random.Random) -> dict[str, Any]:
    return {
        "event": rng.choice(
            [
                "ONCRMDOCUMENTGENERATORDOCUMENTADD",
                "onCrmDocumentGeneratorDocumentUpdate",
                "ONCRMDOCUMENTGENERATORDOCUMENTDELETE",
                "ONCRMDEALADD",
                "ONAPPTEST",
            ]
        ),
        "event_handler_id": str(rng.randint(1, 1000)),
        "data": {
            "FIELDS": {
                "ID": str(rng.randint(1, 10**6)),
                "ENTITY_TYPE_ID": str(rng.choice([1, 2, 3, 4, 7, 31, 128])),
                "ENTITY_ID": str(rng.randint(1, 10**6)),
            }
        },
        "ts": str(rng.randint(1_600_000_000, 1_900_000_000)),
        "auth": {
            "access_token": "s6p6eclrvim6da22ft9ch94ekreb52lv",
            "expires_in": "3600",
            "scope": "crm",
            "domain": "portal.example",
            "server_endpoint": "https://oauth.bitrix.info/rest/",
            "status": "L",
            "client_endpoint": "https://portal.example/rest/",
            "member_id": "a223c6b3710f85df22e9377d6c4f7553",
            "application_token": TOKEN if rng.random() < 0.8 else TOKEN[:-1] + "0",
        },
    }


def junk(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(PIECES) for _ in range(size))


def mutate(rng: random.Random, payload: dict[str, Any]) -> dict[str, Any]:
    """Drop, replace or nest one or two leaves of a valid payload."""
    for _ in range(rng.randint(1, 2)):
        table: dict[str, Any] = payload
        while True:
            if not table:
                table["x"] = "y"
            key = rng.choice(list(table))
            if isinstance(table[key], dict) and rng.random() < 0.7:
                table = table[key]
                continue
            break
        roll = rng.random()
        if roll < 0.3:
            del table[key]
        elif roll < 0.6:
            table[key] = junk(rng, rng.randint(0, 8))
        elif roll < 0.8:
            table[key] = {junk(rng, 2).replace("]", "") or "k": junk(rng, 3)}
        else:
            table[key] = str(rng.choice([0, -5, 10**19, 2**63, "", "1e3", "0x10", "١٢"]))
    return payload


def random_body(rng: random.Random) -> bytes:
    kind = rng.randrange(10)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 3000))
    if kind == 1:  # truncated and broken percent-escapes
        return (junk(rng, rng.randint(1, 200)) + rng.choice(["%", "%4", "%e", ""])).encode(
            "utf-8", "surrogateescape"
        )
    if kind == 2:  # deep bracket nesting around the token key
        depth = rng.choice([10, 63, 64, 65, 200, 2000])
        key = "auth" + "[a]" * depth + "[application_token]"
        return f"{key}={TOKEN}&event=ONCRMDOCUMENTGENERATORDOCUMENTADD".encode()
    if kind == 3:  # huge keys and values, around the size limit
        size = rng.choice([1000, 30_000, MAX_BODY - 200, MAX_BODY + 10, 3 * MAX_BODY])
        valid = encode_query(valid_payload(rng))
        return (valid + "&" + "k" * size + "=" + "v" * rng.randint(0, 50)).encode()[: size + 10]
    if kind == 4:  # brackets everywhere
        return "&".join(
            "[" * rng.randint(0, 5) + junk(rng, 3) + "]" * rng.randint(0, 5) + "=" + junk(rng, 2)
            for _ in range(rng.randint(1, 50))
        ).encode("utf-8", "surrogateescape")
    if kind == 5:  # a valid form cut at a random byte
        data = encode_query(valid_payload(rng)).encode()
        return data[: rng.randint(0, len(data))]
    if kind == 6:  # as the portal sends it (the token is wrong one time in five)
        return encode_query(valid_payload(rng)).encode()
    return encode_query(mutate(rng, valid_payload(rng))).encode("utf-8", "surrogateescape")


def random_headers(rng: random.Random) -> tuple[dict[str, str], list[str]]:
    headers: dict[str, str] = {}
    skip: list[str] = []
    content_type = CONTENT_TYPES[0] if rng.random() < 0.5 else rng.choice(CONTENT_TYPES)
    if content_type is None:
        skip.append("Content-Type")
    else:
        headers["Content-Type"] = content_type
    if rng.random() < 0.1:
        headers["Content-Encoding"] = rng.choice(["gzip", "deflate", "br", "identity", "x"])
    if rng.random() < 0.2:
        headers["X-Fuzz-" + str(rng.randrange(100))] = junk(rng, 3).replace("\u00fc", "u")
    if rng.random() < 0.1:
        headers["User-Agent"] = "Bitrix24 Webhook Engine"
    return headers, skip


@pytest.fixture
def clean_logs(caplog: pytest.LogCaptureFixture) -> AsyncIterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.WARNING)
    yield caplog
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad[:5]]
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


async def test_fuzz_over_http_never_answers_5xx(
    aiohttp_client: ClientFactory, clean_logs: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(20260601)
    handled: list[DocumentEvent] = []

    async def handler(event: DocumentEvent) -> None:
        assert isinstance(event, DocumentEvent) and event.application_token == TOKEN
        handled.append(event)

    receiver = EventReceiver(
        application_token=TOKEN, handler=handler, concurrency=4, queue_size=10_000
    )
    client = await aiohttp_client(receiver.app("/events"))
    statuses: Counter[int] = Counter()
    cases = [(random_body(rng), *random_headers(rng)) for _ in range(5000)]

    async def send(share: list[tuple[bytes, dict[str, str], list[str]]]) -> None:
        for data, headers, skip in share:
            async with client.post(
                "/events", data=data, headers=headers, skip_auto_headers=skip
            ) as response:
                await response.read()
                statuses[response.status] += 1

    await asyncio.gather(*(send(cases[i::8]) for i in range(8)))
    assert await receiver.close(timeout=10) == 0
    assert sum(statuses.values()) == 5000
    assert all(status < 500 for status in statuses), statuses
    stats = receiver.stats
    # aiohttp answers a few itself (400 for an unknown Content-Encoding, ...)
    assert 4500 < stats.received == stats.accepted + sum(stats.rejected.values())
    assert stats.handled == stats.accepted == len(handled) and stats.handler_errors == 0
    # the mix reaches every branch, the handler included
    assert {200, 400, 401, 413, 415} <= set(statuses), statuses
    assert stats.accepted > 100 and stats.rejected["malformed"] > 100, stats
    warnings = Counter(r.getMessage().split("(")[0] for r in clean_logs.records)
    print(f"\nfuzz over HTTP: answers {dict(sorted(statuses.items()))}; receiver {stats}")
    print(f"log records: {dict(warnings)}")


def mocked(rng: random.Random, data: bytes) -> web.Request:
    loop = asyncio.get_running_loop()
    payload = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=loop)
    if data:
        payload.feed_data(data)
    payload.feed_eof()
    headers: dict[str, str] = {}
    roll = rng.random()
    if roll < 0.3:
        headers["Content-Length"] = rng.choice(
            [str(len(data)), "-1", "abc", "", " 12", "1e3", str(10**30), "0x10", "١٢"]
        )
    if rng.random() < 0.8:
        headers["Content-Type"] = rng.choice([c for c in CONTENT_TYPES if c is not None])
    if rng.random() < 0.1:
        headers["Content-Type"] = junk(rng, 4)
    method = rng.choice(["POST"] * 8 + ["GET", "PUT", "post", "X"])
    return make_mocked_request(method, "/events", headers=headers, payload=payload)


async def test_fuzz_handle_with_raw_headers_never_answers_5xx(
    clean_logs: pytest.LogCaptureFixture,
) -> None:
    rng = random.Random(7)
    receiver = EventReceiver(application_token=TOKEN, handler=lambda event: None)
    statuses: Counter[int] = Counter()
    for _ in range(1500):
        request = mocked(rng, random_body(rng))
        response = await receiver.handle(request)
        statuses[response.status] += 1
    assert await receiver.close(timeout=5) == 0
    assert all(status < 500 for status in statuses), statuses
    assert receiver.stats.received == 1500
    print(f"fuzz of handle(): {dict(sorted(statuses.items()))}")
