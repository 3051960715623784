"""``client.events``: ``event.bind`` / ``event.unbind`` / ``event.get`` for document events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bitrix_docgen_async.auth import WebhookAuth
from bitrix_docgen_async.core import validate as check
from bitrix_docgen_async.core.convert import structure
from bitrix_docgen_async.errors import ApiError, ResponseError, WrongAuthTypeError
from bitrix_docgen_async.models import DocumentEventType, EventBinding
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
        self, event_type: DocumentEventType | str, handler_url: str, *, auth_type: int = 0
    ) -> bool:
        """Bind ``handler_url`` to a document event (``event.bind``).

        Args:
            event_type: ADD, UPDATE or DELETE (``DocumentEventType``).
            handler_url: the public URL the portal will POST events to.
            auth_type: the user to run the handler as (0: the one who caused the event).
        """
        self._require_application("event.bind")
        params: dict[str, Any] = {"event": _event(event_type), "handler": _handler(handler_url)}
        if auth_type:
            params["auth_type"] = check.positive_id("auth_type", auth_type)
        reply = await self._send("event.bind", params)
        return bool(reply.result)

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
