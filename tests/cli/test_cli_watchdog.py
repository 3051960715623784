"""The rule by which ``generate --give-up-after`` deems the portal unreachable (no real time)."""

from __future__ import annotations

import asyncio

from bitrix_docgen_async.cli.commands import Watchdog
from bitrix_docgen_async.errors import ConnectError, NotFoundError, OutcomeUnknownError
from bitrix_docgen_async.session import ClientStats
from tests.helpers import FakeClock


def make(give_up: float = 60.0) -> tuple[Watchdog, ClientStats, FakeClock]:
    stats, clock = ClientStats(), FakeClock()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    return Watchdog(stats, give_up, clock=clock, sleep=sleep), stats, clock


def test_silence_alone_is_not_unreachable() -> None:
    watchdog, _, clock = make()
    clock.advance(3600)  # an hour waiting on the limiter: no request failed
    assert not watchdog.unreachable()


def test_silence_while_retrying_is_unreachable_after_the_deadline() -> None:
    watchdog, stats, clock = make()
    stats.retries += 3
    clock.advance(59)
    assert not watchdog.unreachable()
    clock.advance(1)
    assert watchdog.unreachable()


def test_an_answer_restarts_the_count() -> None:
    watchdog, stats, clock = make()
    stats.retries += 1
    clock.advance(59)
    stats.http_requests += 1  # the portal answered
    assert not watchdog.unreachable()
    clock.advance(59)
    assert not watchdog.unreachable()  # no failure since that answer
    stats.retries += 1
    clock.advance(1)
    assert watchdog.unreachable()


def test_failed_entities_count_only_for_transport_failures() -> None:
    watchdog, _, clock = make()
    watchdog.failed(NotFoundError("no such template"))  # the portal answered that
    clock.advance(120)
    assert not watchdog.unreachable() and watchdog.last_failure is None
    lost = OutcomeUnknownError("crm.documentgenerator.document.add", ConnectError("127.0.0.1:9"))
    watchdog.failed(lost)
    assert watchdog.unreachable() and isinstance(watchdog.last_failure, OutcomeUnknownError)


async def test_run_returns_the_silence_once_given_up() -> None:
    watchdog, stats, clock = make(give_up=30.0)
    stats.retries += 1
    silence = await asyncio.wait_for(watchdog.run(), 5)
    assert silence >= 30.0 and clock() >= 1030.0
