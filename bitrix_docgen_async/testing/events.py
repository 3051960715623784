"""``event.bind``/``event.unbind``/``event.get`` and the queue of events to deliver.

docs/portal.md#binding-handlers: the three methods need application (OAuth) auth; under a webhook
they answer 403 ``WRONG_AUTH_TYPE`` ``Application context required``. Bindings are kept per
application (the caller's auth identity). ``bind`` answers ``true``; an unknown event is 400
``ERROR_EVENT_NOT_FOUND`` ``Event not found``; binding the same handler again (same event,
handler, ``auth_type`` and type) is 400 ``ERROR_HANDLER_ALREADY_EXIST`` ``Handler already
exists!``; a missing ``event`` or (online) ``handler`` is 400 ``ERROR_ARGUMENT``. ``unbind``
answers ``{"count": n}``: ``event``, ``handler`` and ``auth_type`` filter when given, and, as the
docs warn, an absent one matches every binding of the application. ``get`` lists the
application's bindings as ``{"event", "handler", "auth_type" (string), "offline" (0/1)}``.

Offline bindings (``event_type=offline``, no handler, optional ``auth_connector``) are for
administrators; their changes go to the queue of :mod:`.offline`. ``options[minTimeout]`` of an
``ONOFFLINEEVENT`` binding spaces its notifications (default 1 s).

Delivery is not done here: :func:`emit` appends a :class:`PendingEvent` per online binding to
``state.pending_events`` (``FakePortal.pending_events``) and calls ``state.on_event``; the
portal's :class:`~bitrix_docgen_async.testing.delivery.EventDelivery` drains that list.
"""

from __future__ import annotations

import time
from typing import Any

from bitrix_docgen_async.testing.offline import offline_binding, record_offline
from bitrix_docgen_async.testing.params import to_int
from bitrix_docgen_async.testing.records import EventBinding, PendingEvent
from bitrix_docgen_async.testing.state import CallContext, MethodRegistry, PortalError, PortalState

__all__ = [
    "DOCUMENT_ADD",
    "DOCUMENT_DELETE",
    "DOCUMENT_UPDATE",
    "KNOWN_EVENTS",
    "emit",
    "register_events",
]

DOCUMENT_ADD = "ONCRMDOCUMENTGENERATORDOCUMENTADD"
DOCUMENT_UPDATE = "ONCRMDOCUMENTGENERATORDOCUMENTUPDATE"
DOCUMENT_DELETE = "ONCRMDOCUMENTGENERATORDOCUMENTDELETE"

_CRM = ("LEAD", "DEAL", "CONTACT", "COMPANY", "QUOTE", "INVOICE", "DYNAMICITEM")
#: Event names ``event.bind`` accepts (upper case; names are matched case-insensitively).
KNOWN_EVENTS = frozenset(
    {
        DOCUMENT_ADD,
        DOCUMENT_UPDATE,
        DOCUMENT_DELETE,
        "ONAPPTEST",
        "ONAPPINSTALL",
        "ONAPPUPDATE",
        "ONAPPUNINSTALL",
        "ONOFFLINEEVENT",
        *(f"ONCRM{kind}{action}" for kind in _CRM for action in ("ADD", "UPDATE", "DELETE")),
    }
)


def _application(ctx: CallContext) -> str:
    if ctx.auth.kind != "oauth":
        raise PortalError("WRONG_AUTH_TYPE", "Application context required", 403)
    return ctx.auth.identity


def _text(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    return "" if value is None else str(value).strip()


def bind(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``event.bind``: ``event``*, ``handler``*, ``auth_type``, ``event_type``; ``true``."""
    application = _application(ctx)
    event = _text(params, "event").upper()
    if not event:
        raise PortalError("ERROR_ARGUMENT", "Argument 'EVENT' is null or empty")
    if event not in KNOWN_EVENTS:
        raise PortalError("ERROR_EVENT_NOT_FOUND", "Event not found")
    offline = _text(params, "event_type").lower() == "offline"
    handler = "" if offline else _text(params, "handler")
    if not handler and not offline:
        raise PortalError("ERROR_ARGUMENT", "Argument 'HANDLER' is null or empty")
    options = params.get("options")
    min_timeout = to_int(options.get("minTimeout")) if isinstance(options, dict) else None
    binding = EventBinding(
        application,
        event,
        handler,
        to_int(params.get("auth_type")) or 0,
        offline,
        auth_connector=_text(params, "auth_connector") if offline else "",
        min_timeout=1.0 if min_timeout is None else float(max(min_timeout, 0)),
    )
    offline_binding(ctx, binding)
    if binding in ctx.state.bindings:
        raise PortalError("ERROR_HANDLER_ALREADY_EXIST", "Handler already exists!")
    ctx.state.bindings.append(binding)
    return True


def unbind(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``event.unbind``: ``event``, ``handler``, ``auth_type``, ``event_type``; ``{"count"}``."""
    application = _application(ctx)
    event, handler = _text(params, "event").upper(), _text(params, "handler")
    auth_type = to_int(params.get("auth_type"))
    offline = _text(params, "event_type").lower() == "offline"

    def chosen(binding: EventBinding) -> bool:
        return (
            binding.application == application
            and binding.offline == offline
            and (not event or binding.event == event)
            and (not handler or binding.handler == handler)
            and (auth_type is None or binding.auth_type == auth_type)
        )

    kept = [binding for binding in ctx.state.bindings if not chosen(binding)]
    count = len(ctx.state.bindings) - len(kept)
    ctx.state.bindings[:] = kept
    return {"count": count}


def get(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``event.get``: the application's bindings."""
    application = _application(ctx)
    return [
        {
            "event": binding.event,
            "handler": binding.handler,
            "auth_type": str(binding.auth_type),
            "offline": int(binding.offline),
        }
        for binding in ctx.state.bindings
        if binding.application == application
    ]


def emit(state: PortalState, event: str, fields: dict[str, str], *, source: str = "") -> None:
    """Queue ``event`` with ``data[FIELDS]`` for every online handler bound to it.

    Offline bindings of it keep the change in their queues (:mod:`.offline`), unless their
    ``auth_connector`` is ``source``, the ``auth_connector`` of the call that made the change.
    """
    record_offline(state, event, fields, source)
    stamp = int(time.time())
    queued = [
        PendingEvent(binding, dict(fields), stamp)
        for binding in state.bindings
        if binding.event == event and not binding.offline
    ]
    if queued:
        state.pending_events.extend(queued)
        if state.on_event is not None:
            state.on_event()


def register_events(registry: MethodRegistry) -> None:
    """Register ``event.bind``, ``event.unbind`` and ``event.get``."""
    registry.register("event.bind", bind)
    registry.register("event.unbind", unbind)
    registry.register("event.get", get)
