"""The offline event queue: ``event.offline.get|list|clear|error`` and ``feature.get``.

docs/portal.md#offline-events: an event bound with ``event_type=offline`` is not POSTed; each
change is kept in the application's queue, one row per object and event (``MESSAGE_ID``): a
later change of the same object updates that row's ``TIMESTAMP_X`` and ``EVENT_DATA`` instead of
adding one, so the queue holds the latest state only. A row reserved by ``event.offline.get``
with ``clear=0`` is not touched by later changes: a new row is started next to it.

The queue is divided by source key: a binding made with ``auth_connector=X`` fills the queue
``X``, which skips the changes made by calls that carry ``auth_connector=X``; the methods read
the queue of the ``auth_connector`` they are given (``""``, the rows without a source, when
none). The four methods are for administrators (403 ``ACCESS_DENIED`` ``Access denied!``) and
application auth only.

``event.offline.get``: ``clear`` (default 1) deletes the rows it returns; with ``clear=0`` it
reserves them under a ``process_id`` (a new one, or the one passed) and answers it; passing a
``process_id`` selects the free rows and the rows already reserved by that process, which is how
a restarted consumer gets back what it never confirmed. ``event.offline.clear`` deletes the rows
of a ``process_id`` (all, or those of ``id``/``message_id``). ``event.offline.error`` marks rows
of a process as erroneous; they leave the reservation and are returned only with ``error=1``.
Reserved rows are deleted ``state.offline_ttl`` seconds (30 days) after the reservation, as the
docs say. Two choices the docs leave open: without the ``rest_offline_extended`` feature a
``clear=0`` is ignored (the rows are deleted, ``process_id`` is ``null``), and an erroneous row
loses its reservation.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

from bitrix_docgen_async.testing.params import to_int
from bitrix_docgen_async.testing.records import EventBinding, OfflineRow, PendingEvent, now
from bitrix_docgen_async.testing.state import (
    CallContext,
    MethodRegistry,
    PortalError,
    PortalState,
    paginate,
)

__all__ = ["OFFLINE_EVENT", "record_offline", "register_offline"]

OFFLINE_EVENT = "ONOFFLINEEVENT"
_FILTERABLE = ("ID", "TIMESTAMP_X", "EVENT_NAME", "MESSAGE_ID")
_LIST_FILTERABLE = (*_FILTERABLE, "PROCESS_ID", "ERROR")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "!=": lambda a, b: a != b,
    "!": lambda a, b: a != b,
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


def message_id(event: str, fields: dict[str, str]) -> str:
    """``MESSAGE_ID``: one value per event and object, so that changes coalesce."""
    text = f"{event}|{fields.get('ID', '')}".encode()
    return hashlib.md5(text, usedforsecurity=False).hexdigest()


def record_offline(state: PortalState, event: str, fields: dict[str, str], source: str) -> None:
    """Keep ``event`` in the queue of every offline binding of it; notify ``ONOFFLINEEVENT``.

    Args:
        state: the portal's state.
        event: the upper-case event name.
        fields: ``data[FIELDS]`` of the change.
        source: the ``auth_connector`` of the call that made the change (``""``: none).
    """
    queues = {
        (binding.application, binding.auth_connector)
        for binding in state.bindings
        if binding.offline
        and binding.event == event
        and not (binding.auth_connector and binding.auth_connector == source)
    }
    if not queues:
        return
    key = message_id(event, fields)
    stamp = now()
    for application, connector in sorted(queues):
        row = next(
            (
                row
                for row in state.offline_rows.values()
                if row.application == application
                and row.connector == connector
                and row.message_id == key
                and not row.process_id
                and not row.error
            ),
            None,
        )
        if row is None:
            row_id = state.next_id("offline_event")
            state.offline_rows[row_id] = OfflineRow(
                row_id, application, connector, event, {"FIELDS": dict(fields)}, key, stamp
            )
        else:
            row.data, row.timestamp = {"FIELDS": dict(fields)}, stamp
    _notify(state, {application for application, _ in queues})


def _notify(state: PortalState, applications: set[str]) -> None:
    """Queue one ``ONOFFLINEEVENT`` (no data) per online binding, at most one per minTimeout."""
    moment = state.clock()
    queued = []
    for binding in state.bindings:
        if binding.offline or binding.event != OFFLINE_EVENT:
            continue
        if binding.application not in applications:
            continue
        last = state.offline_notified.get(binding)
        if last is not None and moment - last < binding.min_timeout:
            continue
        state.offline_notified[binding] = moment
        queued.append(PendingEvent(binding, {}, int(time.time()), data=[]))
    if queued:
        state.pending_events.extend(queued)
        if state.on_event is not None:
            state.on_event()


# -- the methods --------------------------------------------------------------------------------


def _caller(ctx: CallContext) -> str:
    """The application, after the application-auth and administrator checks."""
    if ctx.auth.kind != "oauth":
        raise PortalError("WRONG_AUTH_TYPE", "Application context required", 403)
    if ctx.auth.user_id not in ctx.state.admins:
        raise PortalError("ACCESS_DENIED", "Access denied!", 403)
    _expire(ctx.state)
    return ctx.auth.identity


def _expire(state: PortalState) -> None:
    """Delete reservations older than ``state.offline_ttl`` (the docs' 30 days)."""
    moment = state.clock()
    old = [
        row.id
        for row in state.offline_rows.values()
        if row.reserved_at is not None and moment - row.reserved_at >= state.offline_ttl
    ]
    for row_id in old:
        del state.offline_rows[row_id]


def _text(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    return value.strip() if isinstance(value, str) else "" if value is None else str(value)


def _column(row: OfflineRow, name: str) -> Any:
    return {
        "ID": row.id,
        "TIMESTAMP_X": row.timestamp.isoformat(),
        "EVENT_NAME": row.event,
        "MESSAGE_ID": row.message_id,
        "PROCESS_ID": row.process_id,
        "ERROR": int(row.error),
    }[name]


def _matches(row: OfflineRow, conditions: Any, allowed: tuple[str, ...]) -> bool:
    if not isinstance(conditions, dict):
        return True
    for raw_key, wanted in conditions.items():
        key = str(raw_key)
        operator = next((op for op in _OPERATORS if key.startswith(op)), "=")
        name = key[len(operator) :] if key.startswith(operator) else key
        name = name.upper()
        if name not in allowed:
            continue
        value = _column(row, name)
        if isinstance(value, int):
            number = to_int(wanted)
            if number is None or not _OPERATORS[operator](value, number):
                return False
            continue
        text = str(wanted).upper() if name == "EVENT_NAME" else str(wanted)
        if not _OPERATORS[operator](value, text):
            return False
    return True


def _sorted(
    rows: list[OfflineRow], order: Any, default: str, allowed: tuple[str, ...]
) -> list[OfflineRow]:
    keys = [
        (str(name).upper(), str(direction).upper() == "DESC")
        for name, direction in (order.items() if isinstance(order, dict) else ())
        if str(name).upper() in allowed
    ] or [(default, False)]
    result = sorted(rows, key=lambda row: row.id)
    for name, descending in reversed(keys):
        result.sort(key=lambda row: _column(row, name), reverse=descending)
    return result


def _wire(row: OfflineRow) -> dict[str, Any]:
    return {
        "ID": str(row.id),
        "TIMESTAMP_X": row.timestamp.isoformat(),
        "EVENT_NAME": row.event,
        "EVENT_DATA": row.data,
        "EVENT_ADDITIONAL": False,
        "MESSAGE_ID": row.message_id,
    }


def get(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``event.offline.get``: ``filter``, ``order``, ``limit``, ``clear``, ``process_id``, ..."""
    application = _caller(ctx)
    state = ctx.state
    connector = _text(params, "auth_connector")
    clear_flag = to_int(params.get("clear"))
    clear = clear_flag is None or clear_flag > 0
    if not state.features.get("rest_offline_extended", False):
        clear = True
    process_id = _text(params, "process_id")
    if not clear and not process_id:
        process_id = secrets.token_hex(16)
    errors = (to_int(params.get("error")) or 0) > 0
    limit = to_int(params.get("limit"))
    limit = 50 if limit is None or limit <= 0 else limit
    rows = [
        row
        for row in state.offline_rows.values()
        if row.application == application
        and row.connector == connector
        and row.error == errors
        and row.process_id in ("", process_id)
        and _matches(row, params.get("filter"), _FILTERABLE)
    ]
    chosen = _sorted(rows, params.get("order"), "TIMESTAMP_X", _FILTERABLE)[:limit]
    moment = state.clock()
    for row in chosen:
        if clear:
            del state.offline_rows[row.id]
        else:
            row.process_id, row.reserved_at = process_id, moment
    return {
        "process_id": None if clear else process_id,
        "events": [_wire(row) for row in chosen],
    }


def _required_process(params: dict[str, Any]) -> str:
    process_id = _text(params, "process_id")
    if not process_id:
        raise PortalError("ERROR_ARGUMENT", "Argument 'PROCESS_ID' is null or empty")
    return process_id


def _id_list(params: dict[str, Any], name: str) -> list[str] | None:
    value = params.get(name)
    if value in (None, "", []):
        return None
    if isinstance(value, dict):
        value = list(value.values())
    values = value if isinstance(value, list) else [value]
    return [str(item) for item in values]


def clear(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``event.offline.clear``: ``process_id``*, ``id`` or ``message_id``; ``true``."""
    application = _caller(ctx)
    process_id = _required_process(params)
    ids, messages = _id_list(params, "id"), _id_list(params, "message_id")
    for row in list(ctx.state.offline_rows.values()):
        if row.application != application or row.process_id != process_id:
            continue
        if ids is not None:
            if str(row.id) not in ids:
                continue
        elif messages is not None and row.message_id not in messages:
            continue
        del ctx.state.offline_rows[row.id]
    return True


def error(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``event.offline.error``: ``process_id``*, ``message_id``; ``true``."""
    application = _caller(ctx)
    process_id = _required_process(params)
    messages = _id_list(params, "message_id") or []
    for row in ctx.state.offline_rows.values():
        mine = row.application == application and row.process_id == process_id
        if mine and row.message_id in messages:
            row.error, row.process_id, row.reserved_at = True, "", None
    return True


def list_(ctx: CallContext, params: dict[str, Any]) -> tuple[Any, int, int | None]:
    """``event.offline.list``: ``filter``, ``order``, ``start``, ``auth_connector``; no change."""
    application = _caller(ctx)
    connector = _text(params, "auth_connector")
    rows = [
        row
        for row in ctx.state.offline_rows.values()
        if row.application == application
        and row.connector == connector
        and _matches(row, params.get("filter"), _LIST_FILTERABLE)
    ]
    ordered = _sorted(rows, params.get("order"), "ID", _LIST_FILTERABLE)
    wire = [
        {**_wire(row), "PROCESS_ID": row.process_id, "ERROR": str(int(row.error))}
        for row in ordered
    ]
    return paginate(wire, params.get("start"))


def feature_get(ctx: CallContext, params: dict[str, Any]) -> Any:
    """``feature.get``: ``CODE``*; ``{"value": "Y"|"N"}``."""
    code = _text(params, "CODE") or _text(params, "code")
    if not code:
        raise PortalError("CODE_EMPTY", "CODE can't be empty")
    return {"value": "Y" if ctx.state.features.get(code, False) else "N"}


def offline_binding(ctx: CallContext, binding: EventBinding) -> None:
    """The administrator check of ``event.bind`` with ``event_type=offline``."""
    if binding.offline and ctx.auth.user_id not in ctx.state.admins:
        raise PortalError("ACCESS_DENIED", "Access denied!", 403)


def register_offline(registry: MethodRegistry) -> None:
    """Register ``event.offline.get|list|clear|error`` and ``feature.get``."""
    registry.register("event.offline.get", get)
    registry.register("event.offline.list", list_, paged=True)
    registry.register("event.offline.clear", clear)
    registry.register("event.offline.error", error)
    registry.register("feature.get", feature_get)
