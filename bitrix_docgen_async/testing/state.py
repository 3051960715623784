"""The fake portal's in-memory state, its statistics and the registry of REST methods.

A REST method is a handler ``handler(ctx, params)`` registered under its (case-insensitive) name
in a :class:`MethodRegistry`. It returns the ``result`` value (paged handlers return
``(result, total, next)``), may be a coroutine function, and reports a failure by raising
:class:`PortalError`. The dispatcher around it takes care of auth, limits, costs and ``time``.
"""

from __future__ import annotations

import inspect
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from bitrix_docgen_async.errors import reduce_exception
from bitrix_docgen_async.testing.records import (
    DocumentRecord,
    EventBinding,
    OfflineRow,
    PendingEvent,
    TemplateRecord,
)

if TYPE_CHECKING:
    from bitrix_docgen_async.testing.portal import FakePortal

__all__ = [
    "PAGE_SIZE",
    "AuthInfo",
    "CallContext",
    "Handler",
    "MethodRegistry",
    "MethodSpec",
    "PortalError",
    "PortalState",
    "PortalStats",
    "normalize_method",
    "paginate",
]

#: Rows per page of every list method (docs/portal.md#pagination).
PAGE_SIZE = 50


class PortalError(Exception):
    """A REST error the portal answers with ``{"error", "error_description"}``.

    Attributes:
        code: the ``error`` value (docgen uses ``"0"``, ``"100"`` and ``""``).
        description: the ``error_description`` value.
        status: the HTTP status of a direct call (batch commands report it inside a 200).
    """

    def __init__(self, code: str, description: str, status: int = 400) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled from args and attributes: the constructor does not take the message.
        return reduce_exception(self)

    def payload(self) -> dict[str, str]:
        """The JSON error body."""
        return {"error": self.code, "error_description": self.description}


@attrs.frozen
class AuthInfo:
    """Who is calling: a webhook (``user_id`` + ``code``) or an OAuth application token.

    Attributes:
        kind: ``"webhook"`` or ``"oauth"``.
        identity: the key the operating budget is kept under (one per webhook / per app).
        user_id: the user the call runs as.
        access_token: the OAuth access token of this call (``None`` for a webhook).
        webhook_code: the webhook's secret code (``None`` for OAuth).
    """

    kind: str
    identity: str
    user_id: int
    access_token: str | None = attrs.field(default=None, repr=False)
    webhook_code: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class CallContext:
    """What a handler gets besides its parameters.

    Attributes:
        portal: the portal serving the call (for URLs, the clock and later extensions).
        state: the portal's in-memory entities.
        auth: the caller.
        method: the lower-cased method name.
        request_base: ``scheme://host[:port]`` as the caller addressed the portal (its
            ``Host`` header), ``None`` outside a request.
        auth_connector: the call's ``auth_connector`` parameter (``""``: none): the offline
            queue bound with the same source key does not record the changes it makes.
    """

    portal: FakePortal
    state: PortalState
    auth: AuthInfo
    method: str
    request_base: str | None = None
    auth_connector: str = ""

    @property
    def base_url(self) -> str:
        """Where the caller reaches the portal: the base of every URL handed out.

        The ``Host`` the request came with, so that a portal behind a proxy or a container's
        port mapping hands out URLs its callers can reach; the listening address otherwise.
        """
        return self.request_base or self.portal.base_url


@attrs.define
class PortalState:
    """In-memory entities. Later handlers may add their own tables here.

    Attributes:
        numerators: stored numerators by id, in the shape ``numerator.get`` returns.
        rest_numerators: ids of the numerators created through REST (only those may change).
        counters: the last id handed out per entity kind.
        numbering: the last number each numerator handed out, by numerator id.
        templates: stored templates by id (deleted ones stay, marked).
        documents: stored documents by id.
        upload_templates: the hidden template of ``document.upload``, by application.
        bindings: ``event.bind`` registrations, in binding order.
        pending_events: events waiting for delivery to bound handlers, oldest first.
        on_event: called (no arguments) after events were appended to ``pending_events``; the
            portal's event delivery (:mod:`.delivery`) sets it.
        offline_rows: the offline event queues of every application, by row ``ID``.
        offline_notified: when each ``ONOFFLINEEVENT`` binding was last notified (``clock``).
        admins: the users who are portal administrators (the offline methods are theirs).
        features: what ``feature.get`` answers, by code (``rest_offline_extended``,
            ``rest_auth_connector``).
        offline_ttl: seconds a reserved offline row is kept (the docs' 30 days).
        clock: the portal's monotonic clock (``minTimeout``, reservation ages).
    """

    numerators: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    rest_numerators: set[int] = attrs.field(factory=set)
    counters: Counter[str] = attrs.field(factory=Counter)
    numbering: dict[int, int] = attrs.field(factory=dict)
    templates: dict[int, TemplateRecord] = attrs.field(factory=dict)
    documents: dict[int, DocumentRecord] = attrs.field(factory=dict)
    upload_templates: dict[str, int] = attrs.field(factory=dict)
    bindings: list[EventBinding] = attrs.field(factory=list)
    pending_events: list[PendingEvent] = attrs.field(factory=list)
    on_event: Callable[[], None] | None = attrs.field(default=None, eq=False, repr=False)
    offline_rows: dict[int, OfflineRow] = attrs.field(factory=dict)
    offline_notified: dict[EventBinding, float] = attrs.field(factory=dict)
    admins: set[int] = attrs.field(factory=lambda: {1})
    features: dict[str, bool] = attrs.field(
        factory=lambda: {"rest_offline_extended": True, "rest_auth_connector": True}
    )
    offline_ttl: float = 30 * 86400.0
    clock: Callable[[], float] = attrs.field(default=time.monotonic, eq=False, repr=False)

    def next_id(self, kind: str) -> int:
        """Hand out the next id of ``kind`` (ids start at 1 and are never reused)."""
        self.counters[kind] += 1
        return self.counters[kind]


@attrs.define
class PortalStats:
    """What the portal saw; tests assert on it.

    Attributes:
        requests: HTTP requests to ``/rest/`` (all of them, refused ones included).
        commands: commands executed (a direct call is one command; a batch holds many).
        rejected_rate_limit: requests refused with 503 ``QUERY_LIMIT_EXCEEDED``.
        rejected_operating: refusals with ``OPERATION_TIME_LIMIT``: a direct call, a command
            inside a batch, or a whole ``batch`` request (counted once) refused with HTTP 429.
        cut_off: requests answered with the 504 page because they hit the request time cap.
        token_refreshes: successful ``refresh_token`` grants.
        by_method: executed commands per lower-cased method.
        http_by_method: HTTP requests per lower-cased method (``"batch"`` for batches).
        faults: injected faults by kind.
        batch_sizes: the number of commands of each ``batch`` request, in arrival order.
        events_delivered: event POSTs to bound handlers answered 2xx.
        events_failed: event POSTs that failed (error status, no answer, or a handler URL the
            fake portal does not contact: only 127.0.0.1/localhost ones are delivered).
        operating_billed: seconds of execution billed per budget key ``(credential, method)``,
            e.g. ``("webhook:1", "batch")`` (docs/portal.md#how-batch-is-billed).
        operating_refused: ``OPERATION_TIME_LIMIT`` refusals per budget key.
    """

    requests: int = 0
    commands: int = 0
    rejected_rate_limit: int = 0
    rejected_operating: int = 0
    cut_off: int = 0
    token_refreshes: int = 0
    by_method: Counter[str] = attrs.field(factory=Counter)
    http_by_method: Counter[str] = attrs.field(factory=Counter)
    faults: Counter[str] = attrs.field(factory=Counter)
    batch_sizes: list[int] = attrs.field(factory=list)
    events_delivered: int = 0
    events_failed: int = 0
    operating_billed: dict[tuple[str, str], float] = attrs.field(factory=dict)
    operating_refused: dict[tuple[str, str], int] = attrs.field(factory=dict)

    def billed(self, method: str) -> float:
        """Seconds billed to ``method`` (``"batch"`` for whole batches), over all credentials."""
        return sum(
            seconds for (_, name), seconds in self.operating_billed.items() if name == method
        )

    def reset(self) -> None:
        """Zero every counter."""
        self.requests = self.commands = self.rejected_rate_limit = 0
        self.rejected_operating = self.cut_off = self.token_refreshes = 0
        self.events_delivered = self.events_failed = 0
        self.by_method.clear()
        self.http_by_method.clear()
        self.batch_sizes.clear()
        self.faults.clear()
        self.operating_billed.clear()
        self.operating_refused.clear()


Handler: TypeAlias = Callable[[CallContext, dict[str, Any]], Any]


@attrs.frozen
class MethodSpec:
    """A registered method.

    Attributes:
        name: the lower-cased method name.
        handler: ``handler(ctx, params)``, sync or async.
        paged: the handler returns ``(result, total, next)`` (``next`` ``None`` on the last page).
        batchable: False for methods that ``batch`` refuses (file downloads).
    """

    name: str
    handler: Handler
    paged: bool = False
    batchable: bool = True

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """Run the handler, awaiting it if it is asynchronous."""
        value = self.handler(ctx, params)
        if inspect.isawaitable(value):
            value = await value
        return value


def normalize_method(name: str) -> str:
    """Lower-case a method name and drop a ``.json`` suffix."""
    name = name.strip().lower()
    return name.removesuffix(".json")


class MethodRegistry:
    """REST methods by case-insensitive name."""

    def __init__(self) -> None:
        self._methods: dict[str, MethodSpec] = {}

    def register(
        self, name: str, handler: Handler, *, paged: bool = False, batchable: bool = True
    ) -> None:
        """Add (or replace) the handler of ``name``."""
        key = normalize_method(name)
        self._methods[key] = MethodSpec(key, handler, paged=paged, batchable=batchable)

    def method(
        self, name: str, *, paged: bool = False, batchable: bool = True
    ) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register`."""

        def decorate(handler: Handler) -> Handler:
            self.register(name, handler, paged=paged, batchable=batchable)
            return handler

        return decorate

    def get(self, name: str) -> MethodSpec | None:
        """The method registered under ``name`` (any case, ``.json`` optional), if any."""
        return self._methods.get(normalize_method(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._methods))

    def __len__(self) -> int:
        return len(self._methods)


def paginate(
    rows: Sequence[Any], start: Any, page_size: int = PAGE_SIZE
) -> tuple[list[Any], int, int | None]:
    """Cut one page out of ``rows`` the way Bitrix list methods do.

    Args:
        rows: every matching row, in order.
        start: the ``start`` parameter (string or int; ``-1`` turns the count off).
        page_size: rows per page.

    Returns:
        ``(page, total, next)``; ``next`` is ``None`` when there is no further page.
    """
    try:
        offset = int(start) if start not in (None, "") else 0
    except (TypeError, ValueError):
        offset = 0
    if offset == -1:
        return list(rows[:page_size]), 0, None
    offset = max(offset, 0)
    page = list(rows[offset : offset + page_size])
    following = offset + page_size
    return page, len(rows), following if following < len(rows) else None
