"""Helpers shared by tests (importable as ``tests.helpers``)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bitrix_docgen_async import DocgenClient, GenerationResult, RetryPolicy
from bitrix_docgen_async.testing import FakePortal

#: The ``start_portal`` fixture: ``await start_portal(**options)`` is a running FakePortal,
#: stopped at teardown.
PortalFactory = Callable[..., Awaitable[FakePortal]]

#: Retries in tests wait milliseconds, not seconds.
FAST_RETRY = RetryPolicy(base_delay=0.005, max_delay=0.05, max_attempts=10)


class FakeClock:
    """The tests' one clock: it moves only when told to, and so does its ``sleep``.

    Pass it as ``clock=`` (and ``sleep=``) wherever time is injected. :meth:`advance` moves it
    at once (a sleeper due by then is woken, to run when the loop next turns); :meth:`run_for`
    moves it step by step, letting each sleeper run at its own moment before going on.
    """

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward (never backward), waking every sleeper due by then."""
        assert seconds >= 0, "a monotonic clock does not go back"
        self.now += seconds
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def sleep(self, seconds: float) -> None:
        """Return once the clock has moved ``seconds`` on (at once for none)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        await future

    async def run_for(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its moment and letting it run."""
        assert seconds >= 0, "a monotonic clock does not go back"
        target = self.now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            if not future.done():
                future.set_result(None)
                await turns()
        self.now = target
        await turns()


async def turns(count: int = 30) -> None:
    """Let the loop run ``count`` turns (enough for in-memory replies to land)."""
    for _ in range(count):
        await asyncio.sleep(0)


def oauth_client(portal: FakePortal, **options: Any) -> DocgenClient:
    """A client authorised as the fake portal's OAuth application."""
    creds = portal.oauth
    return DocgenClient.from_oauth(
        client_endpoint=creds.client_endpoint,
        access_token=creds.access_token,
        refresh_token=creds.refresh_token,
        client_id=creds.client_id,
        client_secret=creds.client_secret,
        oauth_url=creds.oauth_url,
        **options,
    )


async def post(
    http: aiohttp.ClientSession, url: str, body: Any = None, **kwargs: Any
) -> tuple[int, Any]:
    """POST ``body`` as JSON; the status and the decoded JSON answer, whatever its content type."""
    async with http.post(url, json=body if body is not None else {}, **kwargs) as response:
        return response.status, await response.json(content_type=None)


async def generate(
    client: DocgenClient, template: int, ids: Any, **options: Any
) -> list[GenerationResult]:
    """Every result of ``generate_many`` for deals ``ids`` from ``template``, in arrival order."""
    return [
        r
        async for r in client.documents.generate_many(
            template_id=template, entity_type_id=2, entity_ids=ids, **options
        )
    ]
