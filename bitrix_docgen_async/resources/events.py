"""``client.events``: ``event.bind`` / ``event.unbind`` / ``event.get`` for document events."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from bitrix_docgen_async.auth import WebhookAuth
from bitrix_docgen_async.core import validate as check
from bitrix_docgen_async.core.convert import structure
from bitrix_docgen_async.errors import ApiError, ResponseError, WrongAuthTypeError
from bitrix_docgen_async.models import DocumentEventType, EventBinding
from bitrix_docgen_async.offline import OfflineEvents
from bitrix_docgen_async.resources.base import Resource

__all__ = ["Events"]

#: What ``event.bind`` answers when the very same handler is bound already (the fake portal's
#: code, and the message the docs report for a real portal).
_ALREADY_BOUND = ("ERROR_HANDLER_ALREADY_EXIST", "unable to set event handler")


def _event(value: DocumentEventType | str) -> str:
    try:
        return DocumentEventType(value.upper() if isinstance(value, str) else value).value
    except ValueError:
        names = ", ".join(e.name for e in DocumentEventType)
        raise ValueError(f"event_type must be a DocumentEventType ({names})") from None


def _handler(url: object) -> str:
    text = check.text("handler_url", url)
    if not text.startswith(("https://", "http://")):
        raise ValueError("handler_url must be an absolute http(s) URL the portal can reach")
    return text


class Events(Resource):
    """Bindings of the three document events to handler URLs.

    Bitrix24 accepts these methods only with application (OAuth) auth
    (docs/portal.md#binding-handlers).
    """

    def _require_application(self, method: str) -> None:
        if isinstance(self._client.auth, WebhookAuth):
            raise WrongAuthTypeError(
                "WRONG_AUTH_TYPE",
                "event handlers can only be bound by an application: use "
                "DocgenClient.from_oauth(...) with the application's tokens, not a webhook",
                method=method,
            )

    async def bind(
        self,
        event_type: DocumentEventType | str,
        handler_url: str | None = None,
        *,
        auth_type: int = 0,
        offline: bool = False,
        auth_connector: str | None = None,
    ) -> bool:
        """Bind ``handler_url`` to a document event, or the event to the offline queue
        (``event.bind``).

        Args:
            event_type: ADD, UPDATE or DELETE (``DocumentEventType``).
            handler_url: the public URL the portal will POST events to (not with ``offline``).
            auth_type: the user to run the handler as (0: the one who caused the event).
            offline: ``event_type=offline``: the portal keeps the events in its queue for
                :meth:`offline` instead of posting them (administrators only;
                docs/portal.md#offline-events).
            auth_connector: the source key of the offline queue (``offline`` only): changes
                made by calls with the same ``auth_connector`` are not recorded in it.
        """
        self._require_application("event.bind")
        params: dict[str, Any] = {"event": _event(event_type)}
        if offline:
            if handler_url is not None:
                raise ValueError("an offline binding has no handler_url")
            params["event_type"] = "offline"
            if auth_connector is not None:
                params["auth_connector"] = check.text("auth_connector", auth_connector)
        else:
            if auth_connector is not None:
                raise ValueError("auth_connector applies to offline bindings only")
            params["handler"] = _handler(handler_url)
        if auth_type:
            params["auth_type"] = check.positive_id("auth_type", auth_type)
        reply = await self._send("event.bind", params)
        return bool(reply.result)

    async def bind_wakeup(self, handler_url: str, *, min_timeout: int | None = None) -> bool:
        """Bind ``handler_url`` to ``ONOFFLINEEVENT`` (``event.bind``), the data-less signal
        that the offline queue has something; ``min_timeout`` spaces the signals (seconds,
        ``options[minTimeout]``; docs/portal.md#offline-events).
        """
        self._require_application("event.bind")
        params: dict[str, Any] = {"event": "ONOFFLINEEVENT", "handler": _handler(handler_url)}
        if min_timeout is not None:
            if isinstance(min_timeout, bool) or not isinstance(min_timeout, int) or min_timeout < 0:
                raise ValueError("min_timeout must be a non-negative integer")
            params["options"] = {"minTimeout": min_timeout}
        reply = await self._send("event.bind", params)
        return bool(reply.result)

    def offline(
        self,
        *,
        auth_connector: str | None = None,
        batch: int = 50,
        process_id: str | None = None,
        state_file: str | os.PathLike[str] | None = None,
        allow_lossy: bool = False,
        until_empty: bool = False,
        poll_interval: float = 30.0,
        member_id: str = "",
    ) -> OfflineEvents:
        """The document events of the offline queue, confirmed after each step
        (``event.offline.get`` with ``clear=0``, ``event.offline.clear``).

        ``async for event in client.events.offline(...)`` yields typed :class:`DocumentEvent`
        values (with ``message_id`` and ``queue_id``). An event is confirmed once the caller's
        step for it returned (the next one is asked for, or the iterator is closed normally);
        one that a crash or an exception interrupted is given again: the delivery is at least
        once (docs/portal.md#offline-events). Bind the events first with
        ``bind(..., offline=True)``.

        Args:
            auth_connector: the queue's source key, as bound (default: the client's
                ``auth_connector``).
            batch: rows per ``event.offline.get`` (``limit``).
            process_id: resume this reservation (what :attr:`OfflineEvents.process_id` was).
            state_file: where the ``process_id`` is kept across restarts (read at the start,
                written as soon as the portal hands one out).
            allow_lossy: accept ``clear=1`` on a portal without the confirm mode (feature
                ``rest_offline_extended``); without it such a portal raises
                :class:`~bitrix_docgen_async.errors.OfflineEventsUnavailableError`.
            until_empty: stop when the queue is empty (a cron-style drain) instead of waiting.
            poll_interval: seconds between looks at an empty queue; :meth:`OfflineEvents.wake`
                (wired to ``ONOFFLINEEVENT`` through ``EventReceiver(on_offline=...)``)
                looks at once.
            member_id: the portal's ``member_id`` to put into the events.
        """
        return OfflineEvents(
            self._client,
            auth_connector=auth_connector,
            batch=batch,
            process_id=process_id,
            state_file=state_file,
            allow_lossy=allow_lossy,
            until_empty=until_empty,
            poll_interval=poll_interval,
            member_id=member_id,
        )

    async def unbind(self, event_type: DocumentEventType | str, handler_url: str) -> int:
        """Remove one binding (``event.unbind``); returns how many handlers were removed.

        Both the event and the handler are always sent: without them the portal removes every
        handler of the application.
        """
        self._require_application("event.unbind")
        params = {"event": _event(event_type), "handler": _handler(handler_url)}
        reply = await self._send("event.unbind", params)
        result = reply.result
        count = result.get("count") if isinstance(result, dict) else None
        if count is None:
            raise ResponseError("event.unbind: no count in the result", status=200)
        return int(count)

    async def get(self) -> list[EventBinding]:
        """The application's bindings (``event.get``), document events or not."""
        self._require_application("event.get")
        reply = await self._send("event.get", {})
        rows = reply.result if isinstance(reply.result, list) else []
        return [structure(row, EventBinding) for row in rows]

    async def ensure_bound(
        self,
        event_types: Iterable[DocumentEventType | str] | DocumentEventType | str,
        handler_url: str,
        *,
        auth_type: int = 0,
    ) -> list[EventBinding]:
        """Make sure each event type is bound to ``handler_url``; idempotent.

        One ``event.get``, then one ``event.bind`` per wanted binding that is missing. Bindings
        already there are left alone, and so is everything else the application has bound
        (nothing is unbound). A bind refused because the handler exists already (a concurrent
        ``ensure_bound``) counts as bound.

        Args:
            event_types: ADD, UPDATE and/or DELETE (``DocumentEventType`` or names, any case).
            handler_url: the public URL the portal will POST events to.
            auth_type: the user to run the handler as (0: the one who caused the event); an
                existing binding matches only with the same ``auth_type``.

        Returns:
            The bindings this call added (``[]`` when everything was bound already).
        """
        self._require_application("event.get")
        if isinstance(event_types, str):
            event_types = [event_types]
        wanted = list(dict.fromkeys(_event(event) for event in event_types))
        handler = _handler(handler_url)
        if auth_type:
            check.positive_id("auth_type", auth_type)
        present = {
            (binding.event.upper(), binding.handler, binding.auth_type)
            for binding in await self.get()
            if not binding.offline
        }
        added: list[EventBinding] = []
        for event in wanted:
            if (event, handler, auth_type) in present:
                continue
            try:
                await self.bind(event, handler, auth_type=auth_type)
            except ApiError as exc:
                text = f"{exc.code} {exc.description}".lower()
                if not any(marker.lower() in text for marker in _ALREADY_BOUND):
                    raise
                continue
            added.append(EventBinding(event=event, handler=handler, auth_type=auth_type))
        return added
