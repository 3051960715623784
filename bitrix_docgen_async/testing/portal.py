"""``FakePortal``: an in-process Bitrix24 portal on 127.0.0.1 for tests and demos.

An ``aiohttp.web`` app serving ``/rest/{uid}/{code}/{method}[.json]`` (webhook),
``/rest/{method}[.json]`` with ``auth`` (OAuth) and ``/oauth/token/``. Each ``/rest/`` request
goes through: injected faults, authentication, the request bucket (503), then the dispatcher
(operating budget 429, execution cost, the request time cap 504). See DESIGN.md §5 and
docs/portal.md for what it imitates.

It implements the docgen numerator, template and document methods, the file endpoints behind
the ``*Machine`` URLs (:mod:`.downloads`), an asynchronous PDF conversion (:mod:`.conversion`)
and ``event.bind``/``unbind``/``get`` (:mod:`.events`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any

from aiohttp import web

from bitrix_docgen_async.core.ratelimit import LeakyBucket, OperatingBudget, RateLimit
from bitrix_docgen_async.testing.batch import parse_commands
from bitrix_docgen_async.testing.billing import OPERATING_FLOOR_S, BillingModel
from bitrix_docgen_async.testing.delivery import EventDelivery
from bitrix_docgen_async.testing.dispatch import Dispatcher
from bitrix_docgen_async.testing.docgen_portal import WEBHOOK_USER as _WEBHOOK_USER
from bitrix_docgen_async.testing.docgen_portal import DocgenPortal
from bitrix_docgen_async.testing.faults import Faults
from bitrix_docgen_async.testing.numerators import register_numerators, store_numerator
from bitrix_docgen_async.testing.oauth import OAuthCredentials, TokenAuthority
from bitrix_docgen_async.testing.realistic import RealisticLimits
from bitrix_docgen_async.testing.records import EventBinding, PendingEvent
from bitrix_docgen_async.testing.state import (
    AuthInfo,
    MethodRegistry,
    PortalError,
    PortalState,
    PortalStats,
    normalize_method,
)
from bitrix_docgen_async.testing.wire import (
    BadRequestBody,
    html_page,
    read_params,
    request_base_url,
)

__all__ = ["FakePortal"]


def url_host(host: str) -> str:
    """The host to put in URLs: a wildcard address is reached through loopback."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.is_unspecified:
        return "127.0.0.1" if address.version == 4 else "[::1]"
    return f"[{host}]" if address.version == 6 else host


class FakePortal(DocgenPortal):
    """A fake Bitrix24 portal with limits, costs, OAuth, faults, the docgen methods and events.

    Args:
        rate_limit: the request bucket (503 when exceeded); ``None`` for no limit.
        operating_budget: the execution budget of each budget key, one per credential and
            method (429 when spent); ``None`` for none.
        operating_billing: where a ``batch`` is billed (docs/portal.md#how-batch-is-billed):
            ``"batch"`` (the default, as a live portal was measured to bill) bills a whole
            batch request's execution to the method ``batch`` and refuses the whole request
            with HTTP 429 once that budget is spent; ``"method"`` (the documentation's reading)
            bills each command to its own method and the outer call not at all. Direct calls
            are billed to their own method under both; a method blocked by its own budget is
            refused inside batches under both.
        operating_floor: calls executing for less than this many seconds (a direct call, a
            command billed to its own method, or a whole batch billed to ``batch``) are not
            billed; 0.1 s on a live portal.
        method_costs: seconds of execution per command, by method name (any case).
        default_cost: seconds of execution of a method not in ``method_costs``.
        cost_jitter: each cost varies by up to this many seconds either way (seeded).
        request_time_cap: an HTTP request running this long is answered with a 504 page.
        access_token_lifetime: seconds an OAuth access token stays valid (on ``clock``).
        faults: injected failures; a quiet :class:`Faults` (for :meth:`Faults.inject`) if None.
        seed: seed of the cost jitter and of the PDF conversion's jitter and failures.
        clock: the monotonic clock of every limit, expiry and PDF conversion.
        pdf_delay: seconds (on ``clock``) from creating or updating a document until its PDF
            and image exist; until then ``pdfUrl``/``imageUrl`` and their ``*Machine`` forms
            are absent from the document.
        pdf_jitter: each conversion takes up to this many seconds more or less (seeded).
        pdf_failure_rate: the share of conversions that fail (seeded): the document then shows
            ``isTransformationError: true`` with ``transformationErrorCode`` and
            ``transformationErrorMessage``, and never gets a PDF.
        host: the address to listen on (a wildcard address is reached through loopback in
            the URLs the portal hands out).
        port: the port to listen on (0: a free one).
        tokenless_events: the share of event deliveries (seeded) that come without
            ``auth[access_token]`` and ``auth[expires_in]``, as the docs warn for events no
            user caused (automation, workflows, agents); 1.0 makes every one tokenless.
        features: what ``feature.get`` answers, by code, over the defaults (both
            ``rest_offline_extended`` and ``rest_auth_connector`` on); without
            ``rest_offline_extended`` the offline queue ignores ``clear=0``.

    ``FakePortal()`` has the documented limits but no execution cost, so that tests run fast;
    :meth:`realistic` adds the documented costs and delays (scaled down if wanted).
    URLs in answers (``downloadUrl``, the ``*Machine`` URLs, ``publicUrl``, the token
    endpoint's ``client_endpoint``) are built on the ``Host`` the request came with.
    """

    def __init__(
        self,
        *,
        rate_limit: RateLimit | None = RateLimit.standard(),  # noqa: B008 - frozen value
        operating_budget: OperatingBudget | None = OperatingBudget(),  # noqa: B008
        operating_billing: BillingModel = "batch",
        operating_floor: float = OPERATING_FLOOR_S,
        method_costs: Mapping[str, float] | None = None,
        default_cost: float = 0.0,
        cost_jitter: float = 0.0,
        request_time_cap: float = 60.0,
        access_token_lifetime: float = 3600.0,
        faults: Faults | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        pdf_delay: float = 8.0,
        pdf_jitter: float = 0.0,
        pdf_failure_rate: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        tokenless_events: float = 0.0,
        features: Mapping[str, bool] | None = None,
    ) -> None:
        if not 0.0 <= tokenless_events <= 1.0:
            raise ValueError(f"tokenless_events must be within [0, 1], got {tokenless_events!r}")
        self.host = host
        self.port = port
        self.clock = clock
        self.request_time_cap = request_time_cap
        self.faults = faults if faults is not None else Faults(seed=seed)
        self.stats = PortalStats()
        self.state = PortalState(clock=clock)
        self.state.features.update(features or {})
        self.registry = MethodRegistry()
        register_numerators(self.registry)
        self.init_docgen(
            clock=clock,
            seed=seed,
            pdf_delay=pdf_delay,
            pdf_jitter=pdf_jitter,
            pdf_failure_rate=pdf_failure_rate,
        )
        self.tokens = TokenAuthority(clock=clock, lifetime=access_token_lifetime, stats=self.stats)
        self.webhook_code = secrets.token_hex(8)
        self._bucket = LeakyBucket(rate_limit, updated=clock()) if rate_limit else None
        self.dispatcher = Dispatcher(
            portal=self,
            registry=self.registry,
            state=self.state,
            stats=self.stats,
            clock=clock,
            operating_budget=operating_budget,
            operating_billing=operating_billing,
            operating_floor=operating_floor,
            method_costs=method_costs,
            default_cost=default_cost,
            cost_jitter=cost_jitter,
            seed=seed,
        )
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._jobs: set[asyncio.Task[Any]] = set()
        #: POSTs document events to bound 127.0.0.1/localhost handlers (:mod:`.delivery`).
        self.event_delivery = EventDelivery(self, tokenless=tokenless_events, seed=seed)

    @classmethod
    def realistic(cls, scale: float = 1.0, **options: Any) -> FakePortal:
        """A portal with the documented limits, execution costs and PDF delay.

        Burst 50 at 2 requests/s, 480 s of execution per budget key per 10 minutes, calls
        under 0.1 s not billed, ``document.add``/``update``/``delete``/``upload`` costing
        1.5 ± 0.5 s each, PDFs after 24 ± 16 s (see :mod:`.realistic` for the sources); every
        time divided by ``scale`` (the drain rate multiplied by it).

        Args:
            scale: how many times faster than a real portal (1: real time; 100: a 10-minute
                budget window lasts 6 s).
            **options: any other :class:`FakePortal` argument; these override the preset too,
                e.g. ``operating_billing="method"`` for the documented billing of batches.
        """
        return cls(**{**RealisticLimits(scale).portal_options(), **options})

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> FakePortal:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen on ``host:port`` (127.0.0.1 and a free port by default).

        Raises:
            OSError: the address is in use or cannot be bound.
        """
        if self._runner is not None:
            return
        app = web.Application()
        # A trailing slash after the method name is served like the name alone: the docs' PHP
        # example posts to ``.../crm.documentgenerator.numerator.list/``
        # (docs/portal.md#wire-quirks).
        for path in ("/rest/{uid}/{code}/{method}", "/rest/{method}"):
            app.router.add_route("*", path, self._rest)
            app.router.add_route("*", path + "/", self._rest)
        app.router.add_route("*", "/oauth/token/", self.tokens.handle)
        app.router.add_route("*", "/oauth/token", self.tokens.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self._base_url = f"http://{url_host(self.host)}:{runner.addresses[0][1]}"
        self.tokens.base_url = self._base_url
        await self.event_delivery.start()

    async def close(self) -> None:
        """Stop listening; commands and event deliveries still running are cancelled."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        jobs = list(self._jobs)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        await self.event_delivery.close()

    # -- what tests use --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:{port}``."""
        if self._base_url is None:
            raise RuntimeError("the FakePortal is not started; use `async with FakePortal()`")
        return self._base_url

    @property
    def webhook_url(self) -> str:
        """``http://127.0.0.1:{port}/rest/1/{code}/``; append ``{method}`` or ``{method}.json``."""
        return f"{self.base_url}/rest/{_WEBHOOK_USER}/{self.webhook_code}/"

    @property
    def oauth(self) -> OAuthCredentials:
        """The installed application's credentials and its first token pair."""
        self.base_url  # noqa: B018 - fail early when not started
        return self.tokens.credentials()

    @property
    def numerators(self) -> Mapping[int, dict[str, Any]]:
        """Stored numerators by id, shaped as ``numerator.get`` returns them (read-only)."""
        return MappingProxyType(self.state.numerators)

    async def drain_events(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - a deadline
        """Wait until every queued event delivery has finished (delivered or failed).

        Raises:
            TimeoutError: some are still queued or in flight after ``timeout`` seconds.
        """
        await self.event_delivery.drain(timeout)

    @property
    def application(self) -> str:
        """The installed application's identity (whose bindings and offline queue these are)."""
        return f"app:{self.tokens.client_id}"

    def offline_queue(self) -> list[dict[str, Any]]:
        """Every application's offline rows, oldest first, as ``event.offline.list`` shows them
        (plus ``CONNECTOR_ID``), for assertions."""
        return [
            {
                "ID": row.id,
                "CONNECTOR_ID": row.connector,
                "EVENT_NAME": row.event,
                "EVENT_DATA": row.data,
                "MESSAGE_ID": row.message_id,
                "TIMESTAMP_X": row.timestamp.isoformat(),
                "PROCESS_ID": row.process_id,
                "ERROR": row.error,
            }
            for row in sorted(self.state.offline_rows.values(), key=lambda row: row.id)
        ]

    def install_app(self, handler_url: str | None = None, *, language: str = "en") -> str:
        """Install the application again: a fresh application token, posted with ``ONAPPINSTALL``.

        The event goes to ``handler_url`` (the installer's handler, which a real application
        sets in its version card) and to every handler bound to ``ONAPPINSTALL``, with the
        ``auth`` the docs show (a fresh token pair, ``member_id``, ``application_token``).
        Deliveries run in the background: ``await drain_events()`` to wait for them.

        Returns:
            The new application token (from now on in every event the portal posts).
        """
        tokens = self.tokens
        tokens.application_token = secrets.token_hex(16)
        access, refresh = tokens.issue_pair()
        base = self.base_url
        auth = {
            "domain": base.removeprefix("http://"),
            "scope": "crm,documentgenerator",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": str(round(tokens.lifetime)),
            "server_endpoint": f"{base}/rest/",
            "status": "L",
            "client_endpoint": f"{base}/rest/",
            "member_id": tokens.member_id,
            "application_token": tokens.application_token,
        }
        data = {"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": language}
        self._post_app_event("ONAPPINSTALL", handler_url, data, auth)
        return tokens.application_token

    def uninstall_app(self, handler_url: str | None = None, *, clean: bool = True) -> None:
        """Remove the application: ``ONAPPUNINSTALL`` (no tokens but ``application_token``).

        The event goes to ``handler_url`` and to every handler bound to ``ONAPPUNINSTALL``;
        then the application's bindings and offline queue are gone.
        """
        base = self.base_url
        auth = {
            "domain": base.removeprefix("http://"),
            "server_endpoint": f"{base}/rest/",
            "client_endpoint": f"{base}/rest/",
            "member_id": self.tokens.member_id,
            "application_token": self.tokens.application_token,
        }
        data = {"LANGUAGE_ID": "en", "CLEAN": "1" if clean else "0"}
        self._post_app_event("ONAPPUNINSTALL", handler_url, data, auth)
        application = self.application
        state = self.state
        state.bindings[:] = [b for b in state.bindings if b.application != application]
        for row_id in [r.id for r in state.offline_rows.values() if r.application == application]:
            del state.offline_rows[row_id]

    def _post_app_event(
        self, event: str, handler_url: str | None, data: dict[str, str], auth: dict[str, str]
    ) -> None:
        application = self.application
        handlers = [handler_url] if handler_url else []
        handlers += [
            b.handler
            for b in self.state.bindings
            if b.application == application and b.event == event and not b.offline
        ]
        stamp = int(time.time())
        for handler in dict.fromkeys(handlers):
            binding = EventBinding(application, event, handler)
            self.state.pending_events.append(PendingEvent(binding, {}, stamp, data, auth))
        self.event_delivery.wake()

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired from now on."""
        self.tokens.expire_all()

    def issue_authorization_code(self) -> str:
        """A code for ``/oauth/token/?grant_type=authorization_code`` (valid 30 s, once)."""
        return self.tokens.issue_code()

    def seed_numerator(
        self, name: str = "Numerator", template: str = "{NUMBER}", *, created_by_rest: bool = True
    ) -> int:
        """Store a numerator; ``created_by_rest=False`` makes one REST may not change."""
        return store_numerator(self.state, name, template, by_rest=created_by_rest)

    # -- request handling ------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        name = normalize_method(request.match_info["method"])
        self.stats.requests += 1
        self.stats.http_by_method[name] += 1
        try:
            params = await read_params(request)
        except BadRequestBody as exc:
            return _json(400, {"error": "INVALID_REQUEST", "error_description": str(exc)})
        fault = self.faults.pick(_request_methods(name, params))
        if fault is not None:
            self.stats.faults[fault] += 1
        if fault == "error_500":
            body = {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}
            return _json(500, body)
        if fault == "html_502":
            return html_page(502)
        if fault == "drop_before":
            return _drop(request)
        if fault == "slow":
            await asyncio.sleep(self.faults.slow_delay)
        try:
            auth = self._authenticate(request, params)
        except PortalError as exc:
            return _json(exc.status, exc.payload())
        if self._bucket is not None and not self._bucket.try_add(self.clock()):
            self.stats.rejected_rate_limit += 1
            return _json(
                503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
            )
        base = request_base_url(request, self.base_url)
        response = await self._execute(auth, name, params, base)
        if fault == "drop_after":
            return _drop(request)
        if fault == "invalid_json":
            return _truncated(response)
        return response

    def _authenticate(self, request: web.Request, params: dict[str, Any]) -> AuthInfo:
        token = params.pop("auth", None)
        if "uid" in request.match_info:
            uid, code = request.match_info["uid"], request.match_info["code"]
            if uid != str(_WEBHOOK_USER) or not secrets.compare_digest(code, self.webhook_code):
                raise PortalError("NO_AUTH_FOUND", "Wrong authorization data", 401)
            return AuthInfo("webhook", f"webhook:{uid}", _WEBHOOK_USER, webhook_code=code)
        if not isinstance(token, str) or not token:
            raise PortalError("NO_AUTH_FOUND", "Wrong authorization data", 401)
        status = self.tokens.check(token)
        if status == "unknown":
            raise PortalError("invalid_token", "Unable to get application by token", 401)
        if status == "expired":
            raise PortalError("expired_token", "The access token provided has expired.", 401)
        identity = f"app:{self.tokens.client_id}"
        return AuthInfo("oauth", identity, self.tokens.user_id, access_token=token)

    async def _execute(
        self, auth: AuthInfo, name: str, params: dict[str, Any], base_url: str
    ) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_time_cap
        # The work runs as its own task so that a request cut off at the cap still lets its
        # started command finish and commit, as the real portal does behind its gateway.
        job = loop.create_task(self.dispatcher.run(auth, name, params, deadline, base_url))
        self._jobs.add(job)
        job.add_done_callback(self._job_done)
        done, _ = await asyncio.wait({job}, timeout=max(0.0, deadline - loop.time()))
        if job in done:
            reply = job.result()
            if not reply.cut:
                return reply.raw if reply.raw is not None else _json(reply.status, reply.body)
            await asyncio.sleep(max(0.0, deadline - loop.time()))
        self.stats.cut_off += 1
        return html_page(504)

    def _job_done(self, job: asyncio.Task[Any]) -> None:
        self._jobs.discard(job)
        if not job.cancelled():
            job.exception()  # retrieved, so that a job nobody awaits any more stays quiet


def _request_methods(name: str, params: dict[str, Any]) -> set[str]:
    names = {name}
    if name == "batch":
        commands, _ = parse_commands(params)
        names.update(
            normalize_method(raw.partition("?")[0]) for _, raw in commands if isinstance(raw, str)
        )
    return names


def _truncated(response: web.StreamResponse) -> web.StreamResponse:
    """The first half of a JSON body, still labelled JSON (other responses pass unchanged)."""
    if not isinstance(response, web.Response) or response.content_type != "application/json":
        return response
    text = response.text or ""
    return web.Response(
        status=response.status, text=text[: len(text) // 2], content_type="application/json"
    )


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _drop(request: web.Request) -> web.Response:
    """Close the connection without answering.

    The transport is closed first; aiohttp then fails to write the returned response with a
    ``ConnectionResetError``, which it treats as a premature client disconnection: no warning,
    no error log, and the client sees the server disconnect.
    """
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=204)
