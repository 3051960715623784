"""Event delivery of the fake portal: POSTing queued events to the bound handlers.

docs/portal.md#events: Bitrix24 posts each event through a queue server to every online handler
bound to it, as ``application/x-www-form-urlencoded`` built by ``http_build_query`` (so every
scalar is a string), with ``event`` upper case, ``event_handler_id``, ``data[FIELDS]``, ``ts``
and ``auth[...]``; it does not retry, and a handler answering an error status or not answering
loses the event.

:class:`EventDelivery` does the same from background tasks: :func:`.events.emit` appends a
:class:`PendingEvent` to ``state.pending_events`` and calls ``state.on_event``, which is
:meth:`EventDelivery.wake`; that pops the pending events and POSTs each once (at most
``concurrency`` at a time) with one ``aiohttp.ClientSession`` the portal owns. A 2xx answer
counts in ``PortalStats.events_delivered``; anything else (an error status, a timeout, a refused
connection, a cancelled delivery) in ``events_failed``.

Only handlers on ``127.0.0.1`` or ``localhost`` are contacted: any other URL is counted as
failed without a connection attempt, redirects are not followed, and the session's resolver
answers ``localhost`` with 127.0.0.1 and refuses every other name.

``event_handler_id`` is a number the portal gives each binding the first time it delivers to it.
``auth[scope]`` is ``"crm, documentgenerator"``, spelled as in the docs' event examples. The docs
warn that the token fields are left out of events no user caused (automation, workflows,
agents; ``_includes/auth-params-in-events.md``): a seeded share ``tokenless`` of deliveries comes
without ``auth[access_token]`` and ``auth[expires_in]``, so that receivers can be tested
against it.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import attrs
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bitrix_docgen_async.core.encoding import encode_query
from bitrix_docgen_async.testing.records import EventBinding, PendingEvent

if TYPE_CHECKING:
    from bitrix_docgen_async.testing.portal import FakePortal

__all__ = ["DeliveryOutcome", "EventDelivery", "is_loopback_url"]

_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost"})
_FORM: Final = "application/x-www-form-urlencoded"
_USER_AGENT: Final = "Bitrix24 Webhook Engine (bitrix_docgen_async FakePortal)"
#: As the docs' document-event examples spell it (with the space), unlike the token answers.
_SCOPE: Final = "crm, documentgenerator"


def is_loopback_url(url: str) -> bool:
    """Whether the fake portal may POST to ``url``: ``http(s)://127.0.0.1`` or ``localhost``."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return False
    host = (parsed.host or "").lower()
    return parsed.scheme in ("http", "https") and host in _LOOPBACK_HOSTS


@attrs.frozen
class DeliveryOutcome:
    """One delivery attempt (there are no retries).

    Attributes:
        event: the event name.
        handler: the handler URL.
        document_id: ``data[FIELDS][ID]``.
        status: the handler's HTTP status, ``None`` when there was no answer.
        error: why there was no answer (an exception name, ``"not a loopback URL"``,
            ``"cancelled"``), ``None`` when there was one.
    """

    event: str
    handler: str
    document_id: str
    status: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """The handler answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


class _LoopbackResolver(AbstractResolver):
    """Resolves ``localhost`` to 127.0.0.1 and nothing else."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.lower() != "localhost":
            raise OSError(f"the fake portal delivers events to loopback handlers only: {host!r}")
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


class EventDelivery:
    """Delivers ``state.pending_events`` to their handlers (see the module docstring).

    Args:
        portal: the portal whose events, tokens and stats it uses; installs itself as
            ``portal.state.on_event``.
        concurrency: deliveries in flight at once.
        timeout: seconds one POST may take, answer included.
        history: how many recent :class:`DeliveryOutcome` records :attr:`outcomes` keeps.
        tokenless: the share of deliveries without the user's access token (seeded).
        seed: seed of the tokenless draws.
    """

    def __init__(
        self,
        portal: FakePortal,
        *,
        concurrency: int = 8,
        timeout: float = 10.0,
        history: int = 1000,
        tokenless: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.concurrency = concurrency
        self.tokenless = tokenless
        self._rng = random.Random(f"events:{seed}")
        self.timeout = timeout
        #: The most recent delivery attempts, oldest first.
        self.outcomes: deque[DeliveryOutcome] = deque(maxlen=history)
        self._portal = portal
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._handler_ids: dict[EventBinding, int] = {}
        self._access_token: str | None = None
        self._closed = False
        self._paused = False
        portal.state.on_event = self.wake

    async def start(self) -> None:
        """Open the HTTP session and deliver whatever is pending."""
        if self._session is None and not self._closed:
            connector = aiohttp.TCPConnector(resolver=_LoopbackResolver(), limit=self.concurrency)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        self.wake()

    async def close(self) -> None:
        """Cancel the deliveries in flight (those already sending count as failed); close."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def paused(self) -> bool:
        """Events stay in ``pending_events`` (for inspection) until :meth:`resume`."""
        return self._paused

    def pause(self) -> None:
        """Stop starting deliveries; the ones in flight finish."""
        self._paused = True

    def resume(self) -> None:
        """Deliver again, beginning with what is pending."""
        self._paused = False
        self.wake()

    def wake(self) -> None:
        """Start deliveries of pending events, up to ``concurrency`` in flight."""
        if self._session is None or self._closed or self._paused:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the loop (a sync seed): start() or drain() will
            return
        pending = self._portal.state.pending_events
        while pending and len(self._tasks) < self.concurrency:
            task = loop.create_task(self._deliver(pending.pop(0)))
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a deadline for the lot
        """Wait until no event is pending or in flight.

        Raises:
            TimeoutError: deliveries are still pending or in flight after ``timeout`` seconds
                (at once if events are pending while delivery is paused or closed).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.wake()
        while self._tasks or self._portal.state.pending_events:
            remaining = deadline - loop.time()
            if remaining <= 0 or not self._tasks:
                left = len(self._tasks) + len(self._portal.state.pending_events)
                raise TimeoutError(f"{left} event deliveries not finished after {timeout} s")
            await asyncio.wait(set(self._tasks), timeout=remaining)
            self.wake()

    # -- one delivery --------------------------------------------------------------------------

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # _deliver catches everything; this keeps asyncio quiet regardless
        self.wake()

    async def _deliver(self, pending: PendingEvent) -> None:
        binding = pending.binding
        outcome = DeliveryOutcome(binding.event, binding.handler, pending.fields.get("ID", ""))
        session = self._session
        if not is_loopback_url(binding.handler) or session is None:
            self._record(attrs.evolve(outcome, error="not a loopback URL"))
            return
        body = encode_query(self.payload(pending)).encode("ascii")
        try:
            async with session.post(
                binding.handler,
                data=body,
                headers={"Content-Type": _FORM, "User-Agent": _USER_AGENT},
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                outcome = attrs.evolve(outcome, status=response.status)
        except asyncio.CancelledError:
            self._record(attrs.evolve(outcome, error="cancelled"))
            raise
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            outcome = attrs.evolve(outcome, error=type(exc).__name__)
        self._record(outcome)

    def payload(self, pending: PendingEvent) -> dict[str, Any]:
        """The form of one delivery, every scalar a string, in the documented key order."""
        portal = self._portal
        tokens = portal.tokens
        base = portal.base_url
        handler_id = self._handler_ids.setdefault(pending.binding, len(self._handler_ids) + 1)
        auth: dict[str, str] = {}
        if not (self.tokenless and self._rng.random() < self.tokenless):
            auth["access_token"] = self._user_token()
            auth["expires_in"] = str(round(tokens.lifetime))
        data: Any = {"FIELDS": {key: str(value) for key, value in pending.fields.items()}}
        if pending.data is not None:
            data = pending.data
        if pending.auth is not None:
            return {
                "event": pending.binding.event.upper(),
                "data": data,
                "ts": str(pending.ts),
                "auth": dict(pending.auth),
            }
        return {
            "event": pending.binding.event.upper(),
            "event_handler_id": str(handler_id),
            "data": data,
            "ts": str(pending.ts),
            "auth": {
                **auth,
                "scope": _SCOPE,
                "domain": base.removeprefix("http://"),
                "server_endpoint": f"{base}/rest/",
                "status": "L",
                "client_endpoint": f"{base}/rest/",
                "member_id": tokens.member_id,
                "application_token": tokens.application_token,
            },
        }

    def _user_token(self) -> str:
        """An access token of the user who caused the event (one, renewed once it expires)."""
        tokens = self._portal.tokens
        if self._access_token is None or tokens.check(self._access_token) != "ok":
            self._access_token, _ = tokens.issue_pair()
        return self._access_token

    def _record(self, outcome: DeliveryOutcome) -> None:
        self.outcomes.append(outcome)
        if outcome.delivered:
            self._portal.stats.events_delivered += 1
        else:
            self._portal.stats.events_failed += 1
