"""``DocgenClient``: the async context manager users hold.

It wires a transport, an auth, a limiter and the batching session together; resources and
``call()`` only build calls and hand them to the session.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar, Unpack, overload

import aiohttp

from bitrix_docgen_async.auth import DEFAULT_OAUTH_URL, Auth, OAuthAuth, TokenStore, WebhookAuth
from bitrix_docgen_async.batch import Batch
from bitrix_docgen_async.calls import settle_many, structure_result
from bitrix_docgen_async.core.params import with_auth_connector
from bitrix_docgen_async.core.pdf import PollSchedule
from bitrix_docgen_async.core.ratelimit import OperatingBudget, RateLimit
from bitrix_docgen_async.core.retry import RetryPolicy
from bitrix_docgen_async.env import client_from_env
from bitrix_docgen_async.errors import BitrixTimeoutError, ClientStateError
from bitrix_docgen_async.limiter import Clock, Limiter, Sleep
from bitrix_docgen_async.options import ClientOptions, check_option_names
from bitrix_docgen_async.resources import Documents, Events, Numerators, Templates
from bitrix_docgen_async.session import (
    UNSET,
    ClientStats,
    CommandResult,
    Session,
    Unset,
    check_options,
    check_routing,
)
from bitrix_docgen_async.tracing import RequestHook, ResponseHook, Tracer
from bitrix_docgen_async.transport import AiohttpTransport, Timeouts, Transport
from bitrix_docgen_async.workflows.download import Downloader
from bitrix_docgen_async.workflows.polling import PdfPoller

__all__ = ["DocgenClient"]

_M = TypeVar("_M")
_R = TypeVar("_R")
_STANDARD = RateLimit.standard()
_BUDGET = OperatingBudget()


class DocgenClient:
    """An asyncio client for the Bitrix24 CRM Document Generator.

    Use it inside ``async with``; concurrent calls are batched (50 commands per HTTP request),
    paced by the portal's request bucket and per-method operating budget, and retried where
    that is safe.

    Args:
        auth: a :class:`WebhookAuth` or :class:`OAuthAuth`.
        rate_limit: the portal's request bucket to stay under (``None``: do not pace).
        operating_budget: the per-method execution budget to stay under (``None``: do not pace).
        limiter: a limiter shared with other clients (overrides the two above).
        http_session: an ``aiohttp.ClientSession`` of yours; it is used and never closed.
        linger: seconds a call may wait for others to share its batch (0 sends at once).
        batch_time_target: the expected execution time one batch may carry, seconds; keeps
            requests well inside the portal's 60 s cut-off.
        timeouts: connect and read timeouts (read defaults to 90 s, above the portal's 60 s).
        retry: retry bounds and waits.
        pdf_schedule: when to look at documents waiting for their PDF (first look 8 s after
            creation by default).
        download_concurrency: how many file downloads run at once.
        queue_timeout: seconds a call may wait to *start* (for a request token or operating
            budget) before it fails with :class:`RateLimitedError` (``retry_after`` set) and is
            never sent. ``None`` (the default) waits as long as the limits require, which bulk
            work wants (a spent ``document.add`` budget frees within 10 minutes); services that
            answer users should set a few seconds, per client or per call with
            :meth:`with_options`.
        transport: the HTTP seam (an :class:`AiohttpTransport` by default; tests pass a fake).
        auth_connector: the source key of this application's offline event queue
            (docs/portal.md#offline-events): sent as ``auth_connector`` with every call (unless
            the call has its own), so that the queue bound with the same key does not record
            the changes this client makes.
        budget_routing: ``"auto"`` (the default) lets the client spend two operating budgets
            once the portal's ``time`` figures have shown it bills a whole ``batch`` to
            ``batch`` and a direct call to its own method (docs/portal.md#how-batch-is-billed):
            a command that ``batch``'s budget has no room for then goes direct, onto its own
            method's budget, while that has room and a request token is free at once (as
            long as ``batch`` has room a direct call would only cost a request). ``"off"``
            keeps everything batched. Neither budget is ever run past its limit.
        clock, sleep: injected in tests (every timed part of the client uses them).
        on_request, on_response: tracing hooks called before and after every HTTP request
            with a :class:`~bitrix_docgen_async.tracing.RequestRecord` /
            :class:`~bitrix_docgen_async.tracing.ResponseRecord` (methods, batch size,
            status, duration; never a secret).
    """

    def __init__(
        self,
        auth: Auth,
        *,
        rate_limit: RateLimit | None = _STANDARD,
        operating_budget: OperatingBudget | None = _BUDGET,
        limiter: Limiter | None = None,
        http_session: aiohttp.ClientSession | None = None,
        linger: float = 0.005,
        batch_time_target: float = 20.0,
        timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen
        pdf_schedule: PollSchedule | None = None,
        download_concurrency: int = 8,
        queue_timeout: float | None = None,
        transport: Transport | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        auth_connector: str | None = None,
        on_request: RequestHook | None = None,
        on_response: ResponseHook | None = None,
        budget_routing: Literal["auto", "off"] = "auto",
    ) -> None:
        check_options(linger, batch_time_target, queue_timeout)
        check_routing(budget_routing)
        if auth_connector is not None and not (
            isinstance(auth_connector, str) and auth_connector.strip()
        ):
            raise ValueError("auth_connector must be a non-empty string or None")
        self.auth = auth
        #: Sent as ``auth_connector`` with every call that has none (see the class docstring).
        self.auth_connector = auth_connector
        self._transport: Transport = transport or AiohttpTransport(http_session, timeouts=timeouts)
        self._limiter = limiter or Limiter.in_memory(
            rate_limit, operating_budget, clock=clock, sleep=sleep
        )
        self._linger = float(linger)
        self._batch_time_target = float(batch_time_target)
        self._queue_timeout = queue_timeout
        self._budget_routing: Literal["auto", "off"] = budget_routing
        self._call_queue_timeout: float | Unset | None = UNSET
        self._call_timeout: float | None = None
        self._retry = retry
        self._pdf_schedule = pdf_schedule or PollSchedule()
        self._clock = clock
        self._tracer = Tracer(on_request, on_response, clock=clock)
        self._download_concurrency = download_concurrency
        self._root = self
        self._poller: PdfPoller | None = None
        # Made again on every __aenter__: its semaphore belongs to the loop that opens the
        # client (a client used under a second asyncio.run() must not reuse the first one's).
        self._downloader = Downloader(self, concurrency=download_concurrency)
        self._session: Session | None = None
        self._stats = ClientStats()
        #: ``crm.documentgenerator.document.*``
        self.documents = Documents(self)
        #: ``crm.documentgenerator.template.*``
        self.templates = Templates(self)
        #: ``crm.documentgenerator.numerator.*``
        self.numerators = Numerators(self)
        #: ``event.bind`` / ``unbind`` / ``get`` for the document events
        self.events = Events(self)

    def __repr__(self) -> str:
        return f"DocgenClient({self.auth!r})"

    @classmethod
    def from_webhook(cls, url: str, **options: Unpack[ClientOptions]) -> DocgenClient:
        """A client for an incoming webhook URL ``https://{portal}/rest/{user_id}/{code}/``.

        The code in the URL is a secret: it never appears in logs, reprs or errors.

        Raises:
            TypeError: an option ``DocgenClient`` does not take (with the closest known one).
        """
        check_option_names(options, where="DocgenClient.from_webhook")
        return cls(WebhookAuth(url), **options)

    @classmethod
    def from_oauth(
        cls,
        *,
        client_endpoint: str,
        access_token: str,
        refresh_token: str,
        client_id: str,
        client_secret: str,
        token_store: TokenStore | None = None,
        oauth_url: str = DEFAULT_OAUTH_URL,
        **options: Unpack[ClientOptions],
    ) -> DocgenClient:
        """A client for an OAuth application; the token is refreshed on ``expired_token``.

        Args:
            client_endpoint: the REST base from the token response, e.g.
                ``https://portal.bitrix24.com/rest/``.
            token_store: awaited with every new token pair; persist it there.
            oauth_url: the authorization server's token endpoint.

        Raises:
            TypeError: an option ``DocgenClient`` does not take (with the closest known one).
        """
        check_option_names(options, where="DocgenClient.from_oauth")
        auth = OAuthAuth(
            client_endpoint=client_endpoint,
            access_token=access_token,
            refresh_token=refresh_token,
            client_id=client_id,
            client_secret=client_secret,
            token_store=token_store,
            oauth_url=oauth_url,
        )
        return cls(auth, **options)

    @classmethod
    def from_env(cls, **options: Unpack[ClientOptions]) -> DocgenClient:
        """A client for ``BITRIX_WEBHOOK_URL``, or else ``BITRIX_CLIENT_ENDPOINT``,
        ``BITRIX_ACCESS_TOKEN``, ``BITRIX_REFRESH_TOKEN``, ``BITRIX_CLIENT_ID`` and
        ``BITRIX_CLIENT_SECRET`` (an OAuth application).

        Raises:
            EnvConfigError: no complete set of credentials (names the variables, no value).
            TypeError: an option ``DocgenClient`` does not take (with the closest known one).
        """
        check_option_names(options, where="DocgenClient.from_env")
        return client_from_env(cls, **options)

    async def __aenter__(self) -> DocgenClient:
        if self._root is not self:
            raise ClientStateError("a view from with_options() is opened by its client")
        if self._session is not None:
            raise ClientStateError("the client is already open")
        await self._transport.open()
        self._downloader = Downloader(self, concurrency=self._download_concurrency)
        self._session = Session(
            self._transport,
            self.auth,
            self._limiter,
            linger=self._linger,
            batch_time_target=self._batch_time_target,
            retry=self._retry,
            queue_timeout=self._queue_timeout,
            budget_routing=self._budget_routing,
        )
        self._stats = self._session.stats
        self._session.sender.tracer = self._tracer
        self._session.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._root is not self:
            raise ClientStateError("a view from with_options() is closed by its client")
        session, self._session = self._session, None
        poller, self._poller = self._poller, None
        try:
            if poller is not None:
                await poller.close()  # fails every waiter with ClientStateError
            if session is not None:
                await session.close()
        finally:
            await self._transport.close()

    def with_options(
        self,
        *,
        queue_timeout: float | Unset | None = UNSET,
        timeout: float | Unset | None = UNSET,
    ) -> DocgenClient:
        """A view of this client whose calls use other bounds; it shares the open session.

        Args:
            queue_timeout: seconds a call may wait to start before it fails with
                :class:`RateLimitedError` (never sent); ``None`` waits as long as needed.
            timeout: seconds a call may take in all (queue and request); past it the caller
                gets :class:`BitrixTimeoutError`. A call that had not started is never sent;
                one whose request had started may still execute on the portal.

        The view is not opened or closed itself: use it inside the client's ``async with``.
        """
        if queue_timeout is not UNSET and queue_timeout is not None:
            check_options(self._linger, self._batch_time_target, queue_timeout)
        if timeout is not UNSET and timeout is not None:
            check_options(self._linger, self._batch_time_target, timeout)
        view = copy.copy(self)
        if queue_timeout is not UNSET:
            view._call_queue_timeout = queue_timeout
        if timeout is not UNSET:
            view._call_timeout = timeout
        view.documents = Documents(view)
        # Reconciling adds stay one at a time per key across every view of one client.
        view.documents._adding = self.documents._adding
        view.templates = Templates(view)
        view.numerators = Numerators(view)
        view.events = Events(view)
        return view

    @property
    def session(self) -> Session:
        """The open session; raises :class:`ClientStateError` outside ``async with``."""
        session = self._root._session
        if session is None:
            raise ClientStateError("the client is not open: use it inside 'async with'")
        return session

    @property
    def downloader(self) -> Downloader:
        """The downloads of this client (bounded concurrency)."""
        return self._root._downloader

    @property
    def pdf_poller(self) -> PdfPoller:
        """The one loop that polls every document waiting for its PDF."""
        root = self._root
        root.session  # noqa: B018 - raises ClientStateError outside 'async with'
        if root._poller is None:
            root._poller = PdfPoller(root, root._pdf_schedule, clock=root._clock)
        return root._poller

    @property
    def stats(self) -> ClientStats:
        """http_requests, batches, commands, retries, rate_limited, limiter_wait_s, downloads,
        budget_wait_s, queue_depth, budget_left_s, budget_spent_s, direct_commands,
        batched_commands, billing_model."""
        stats = self._root._stats
        stats.budget_left_s = dict(self._limiter.budget_left)
        stats.budget_spent_s = dict(self._limiter.budget_spent)
        return stats

    @overload
    async def call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
    ) -> Any: ...

    @overload
    async def call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        into: type[_M],
        key: str | None = None,
        idempotent: bool | None = None,
    ) -> _M: ...

    async def call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        into: type[_M] | None = None,
        key: str | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Call any REST method and return its ``result`` (batched with concurrent calls).

        Args:
            method: e.g. ``crm.documentgenerator.numerator.list``.
            params: its parameters, as the docs list them.
            into: a model (e.g. ``Numerator``) to structure the result into with the library's
                converter; the result is then typed as that model.
            key: with ``into``, the key the result is wrapped in (``"numerator"``).
            idempotent: whether it may be sent again after an ambiguous failure (default: known
                reads may, anything else may not).

        Raises:
            ApiError: the portal's error for this call (a subclass per kind).
            OutcomeUnknownError: a write failed ambiguously and was not retried.
            ResponseError: with ``into``, the result does not fit the model.
        """
        result = (await self.call_full(method, params, idempotent=idempotent)).result
        return result if into is None else structure_result(result, into, key=key, method=method)

    async def call_full(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
    ) -> CommandResult:
        """Like :meth:`call`, but with ``total``, ``next`` and the ``time`` block."""
        call = self.session.call(
            method,
            with_auth_connector(params, self.auth_connector),
            idempotent=idempotent,
            queue_timeout=self._call_queue_timeout,
        )
        if self._call_timeout is None:  # (no coroutine more per call than needed)
            return await call
        return await self._bounded(call, method)

    async def call_many(
        self,
        method: str,
        params: Sequence[Mapping[str, Any] | None],
        *,
        return_exceptions: bool = False,
        idempotent: bool | None = None,
    ) -> list[Any]:
        """Call ``method`` once per item of ``params`` and return each ``result``, in order.

        The calls are batched like concurrent :meth:`call` calls (50 per request) and awaited as
        one, without a task or a future per call, so a bulk read costs less CPU than
        ``asyncio.gather`` over :meth:`call`. Every item is validated before anything is sent.
        Cancelling the wait gives up every call still queued (never sent). A ``timeout`` set
        with :meth:`with_options` bounds the whole wait.

        Args:
            method: e.g. ``crm.documentgenerator.document.get``.
            params: one parameter mapping per call (duplicates are called again).
            return_exceptions: put a failed call's exception in its place in the list instead
                of raising.
            idempotent: as for :meth:`call`.

        Raises:
            ExceptionGroup: without ``return_exceptions``, when any call failed: every failed
                call's exception (an ``ApiError`` subclass, ``OutcomeUnknownError``, ...), each
                with a note naming its position; the results of the others are dropped (ask
                for ``return_exceptions=True`` to keep them). Handle kinds with ``except*``.
        """
        outcomes = await self._read_many(method, params, _result, idempotent=idempotent)
        return settle_many(method, outcomes, return_exceptions=return_exceptions)

    async def call_many_full(
        self,
        method: str,
        params: Sequence[Mapping[str, Any] | None],
        *,
        idempotent: bool | None = None,
    ) -> list[CommandResult | BaseException]:
        """Like :meth:`call_many`, but each call's full :class:`CommandResult` (with ``total``,
        ``next`` and ``time``) or the exception it failed with, in order; never raises a
        call's own failure."""
        return await self._read_many(method, params, None, idempotent=idempotent)

    async def _read_many(
        self,
        method: str,
        params: Sequence[Mapping[str, Any] | None],
        read: Callable[[Any], Any] | None,
        *,
        idempotent: bool | None = None,
    ) -> list[Any]:
        """:meth:`call_many_full`, each ``result`` turned by ``read`` as it arrives (a model,
        e.g.; its exception is that call's failure), or the :class:`CommandResult` without it.
        Resources build their bulk reads (``documents.get_many``) on it."""
        if self.auth_connector is not None:  # as in call_full: a call's own value wins
            params = [with_auth_connector(p, self.auth_connector) for p in params]
        calls = self.session.call_many(
            method,
            params,
            idempotent=idempotent,
            queue_timeout=self._call_queue_timeout,
            read=read,
        )
        return await self._bounded(calls, method)

    async def _bounded(self, call: Coroutine[Any, Any, _R], method: str) -> _R:
        """Await ``call`` within the view's ``timeout`` (if any)."""
        if self._call_timeout is None:
            return await call
        # Raced against the injected sleep (not asyncio.timeout) so that tests drive it with
        # their clock. A call dropped before its request started is never sent.
        running = asyncio.ensure_future(call)
        timer = asyncio.ensure_future(self._limiter.sleep(self._call_timeout))
        try:
            await asyncio.wait({running, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not running.done():
                running.cancel()
        if not running.done() or running.cancelled():  # (a cancel lands on the next turn)
            raise BitrixTimeoutError(f"{method}: no result within timeout={self._call_timeout:g} s")
        return running.result()

    def batch(self, *, halt: bool = False) -> Batch:
        """An explicit batch whose commands may refer to each other's results."""
        return Batch(self.session, halt=halt, auth_connector=self.auth_connector)

    def flush(self) -> None:
        """Send queued calls now rather than after the linger."""
        self.session.flush()


def _result(result: Any) -> Any:
    return result
