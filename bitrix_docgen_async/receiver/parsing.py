"""Reading the form Bitrix24 posts for ``ONCRMDOCUMENTGENERATORDOCUMENT{ADD,UPDATE,DELETE}``.

docs/portal.md#events: the portal POSTs ``application/x-www-form-urlencoded`` with PHP-style keys
(``event``, ``event_handler_id``, ``data[FIELDS][ID]``, ``ts``, ``auth[application_token]``, ...)
built by ``http_build_query``, so every scalar is a string. The body is decoded with the same
:func:`~bitrix_docgen_async.core.encoding.parse_str` the fake portal uses, then checked field by
field. Error messages name the key and the problem, never the value (values may be tokens, and
are the sender's text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote_plus

from bitrix_docgen_async.core.encoding import parse_str
from bitrix_docgen_async.errors import reduce_exception
from bitrix_docgen_async.models.events import (
    AppInstallEvent,
    AppUninstallEvent,
    DocumentEvent,
    DocumentEventType,
)

__all__ = [
    "InvalidEventError",
    "UnknownEventError",
    "event_name",
    "form_member",
    "form_token",
    "parse_app_install",
    "parse_app_uninstall",
    "parse_event",
    "parse_offline_row",
    "read_form",
]

_DIGITS: Final = re.compile(r"[0-9]{1,18}")
_TS_DIGITS: Final = re.compile(r"[0-9]{1,11}")
_NAME_PREVIEW: Final = 64


class InvalidEventError(ValueError):
    """The form is not a usable document event delivery.

    Attributes:
        field: the key at fault in PHP notation (``"data[FIELDS][ID]"``), ``""`` for the form
            as a whole.
        problem: what is wrong with it.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled from args and attributes: the constructor does not take the message.
        return reduce_exception(self)


class UnknownEventError(InvalidEventError):
    """A delivery of an event other than the three document generator events.

    Attributes:
        event_name: the event name as sent (at most 64 characters of it).
    """

    def __init__(self, event_name: str) -> None:
        self.event_name = event_name[:_NAME_PREVIEW]
        super().__init__("event", "not a document generator event")


def read_form(form: bytes | bytearray | memoryview | str | Mapping[str, Any]) -> Mapping[str, Any]:
    """The nested form ``parse_str`` makes of a body, or the mapping given.

    Args:
        form: a raw body (``bytes``/``str``), a nested mapping (what ``parse_str`` returns, or a
            delivery shown as JSON in the docs), or a flat mapping with PHP-style keys (what
            ``await request.post()`` gives), which is decoded as PHP would.

    Raises:
        InvalidEventError: ``form`` is of another type, or a flat mapping holds a value that is
            not text.
    """
    if isinstance(form, bytes | bytearray | memoryview):
        return parse_str(bytes(form))
    if isinstance(form, str):
        return parse_str(form)
    if isinstance(form, Mapping):
        if any(isinstance(key, str) and "[" in key for key in form):
            return parse_str(_flat_query(form))
        return form
    raise InvalidEventError("", f"expected a form body or a mapping, got {type(form).__name__}")


def form_token(form: Mapping[str, Any]) -> str | None:
    """``auth[application_token]`` of a decoded form, if it is there as non-empty text."""
    auth = form.get("auth")
    token = auth.get("application_token") if isinstance(auth, Mapping) else None
    return token if isinstance(token, str) and token else None


def form_member(form: Mapping[str, Any]) -> str | None:
    """``auth[member_id]`` of a decoded form, if it is there as non-empty text."""
    auth = form.get("auth")
    member = auth.get("member_id") if isinstance(auth, Mapping) else None
    return member if isinstance(member, str) and member else None


def event_name(form: Mapping[str, Any]) -> str:
    """``event`` of a decoded form, upper case (``""`` when missing or not text)."""
    name = form.get("event")
    return name.strip().upper() if isinstance(name, str) else ""


def parse_app_install(form: Mapping[str, Any]) -> AppInstallEvent:
    """Read an ``ONAPPINSTALL`` delivery (decoded form) into an :class:`AppInstallEvent`.

    Raises:
        InvalidEventError: ``auth[member_id]``, ``auth[domain]`` or ``auth[application_token]``
            missing, or ``ts`` not a unix time.
    """
    auth = _mapping(form.get("auth"), "auth")
    data = form.get("data")
    data = data if isinstance(data, Mapping) else {}
    expires_in = auth.get("expires_in")
    return AppInstallEvent(
        member_id=_text(auth, "member_id", required=True),
        domain=_text(auth, "domain", required=True),
        application_token=_text(auth, "application_token", required=True),
        timestamp=_timestamp(form.get("ts")),
        client_endpoint=_text(auth, "client_endpoint"),
        server_endpoint=_text(auth, "server_endpoint"),
        scope=_text(auth, "scope"),
        status=_text(auth, "status"),
        access_token=_text(auth, "access_token") or None,
        refresh_token=_text(auth, "refresh_token") or None,
        expires_in=None if expires_in in (None, "") else _integer(expires_in, "auth[expires_in]"),
        version=_text(data, "VERSION"),
        language=_text(data, "LANGUAGE_ID"),
    )


def parse_app_uninstall(form: Mapping[str, Any]) -> AppUninstallEvent:
    """Read an ``ONAPPUNINSTALL`` delivery (decoded form) into an :class:`AppUninstallEvent`.

    Raises:
        InvalidEventError: ``auth[member_id]`` or ``auth[domain]`` missing, or ``ts`` not a
            unix time.
    """
    auth = _mapping(form.get("auth"), "auth")
    data = form.get("data")
    data = data if isinstance(data, Mapping) else {}
    return AppUninstallEvent(
        member_id=_text(auth, "member_id", required=True),
        domain=_text(auth, "domain", required=True),
        clean=str(data.get("CLEAN", "0")) == "1",
        timestamp=_timestamp(form.get("ts")),
    )


def parse_offline_row(row: Mapping[str, Any], *, domain: str, member_id: str) -> DocumentEvent:
    """A row of ``event.offline.get`` as a :class:`DocumentEvent` (docs/portal.md#offline-events).

    The row (``ID``, ``TIMESTAMP_X``, ``EVENT_NAME``, ``EVENT_DATA``, ``EVENT_ADDITIONAL``,
    ``MESSAGE_ID``) has neither ``auth`` nor a handler id: ``domain`` and ``member_id`` are the
    portal's the consumer reads, and the tokens stay empty.

    Raises:
        UnknownEventError: ``EVENT_NAME`` is not a document generator event.
        InvalidEventError: ``EVENT_DATA[FIELDS]`` lacks the ids, or another field is malformed.
    """
    if not isinstance(row, Mapping):
        raise InvalidEventError("", "an offline event row must be an object")
    event_type = _event_type(row.get("EVENT_NAME"))
    data = _mapping(row.get("EVENT_DATA"), "EVENT_DATA")
    ids = _mapping(data.get("FIELDS"), "EVENT_DATA[FIELDS]")
    stamp = row.get("TIMESTAMP_X")
    try:
        moment = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidEventError("TIMESTAMP_X", "not an ISO 8601 time with an offset")
    message = row.get("MESSAGE_ID")
    if not isinstance(message, str | int) or isinstance(message, bool) or message == "":
        raise InvalidEventError("MESSAGE_ID", "missing")
    return DocumentEvent(
        event_type=event_type,
        document_id=_positive(ids.get("ID"), "EVENT_DATA[FIELDS][ID]"),
        entity_type_id=_positive(ids.get("ENTITY_TYPE_ID"), "EVENT_DATA[FIELDS][ENTITY_TYPE_ID]"),
        entity_id=_positive(ids.get("ENTITY_ID"), "EVENT_DATA[FIELDS][ENTITY_ID]"),
        handler_id=None,
        timestamp=moment.astimezone(UTC),
        domain=domain,
        member_id=member_id,
        message_id=str(message),
        queue_id=_positive(row.get("ID"), "ID"),
    )


def parse_event(form: bytes | bytearray | memoryview | str | Mapping[str, Any]) -> DocumentEvent:
    """Read a document generator event delivery into a :class:`DocumentEvent`.

    Handles ``ONCRMDOCUMENTGENERATORDOCUMENTADD``, ``...UPDATE`` and ``...DELETE`` (any case).
    This checks the shape only; comparing ``auth[application_token]`` with the application's
    token is :class:`~bitrix_docgen_async.receiver.EventReceiver`'s job (or yours).

    Args:
        form: the raw ``application/x-www-form-urlencoded`` body, or an already-parsed mapping
            (see :func:`read_form`). Integer fields may be ``int`` in a mapping.

    Returns:
        The typed event.

    Raises:
        UnknownEventError: ``event`` names another event (a ``ValueError``).
        InvalidEventError: a required key is missing, or a value has the wrong form
            (ids must be positive decimal integers, ``ts`` a unix time).
    """
    fields = read_form(form)
    event_type = _event_type(fields.get("event"))
    data = _mapping(fields.get("data"), "data")
    ids = _mapping(data.get("FIELDS"), "data[FIELDS]")
    auth = _mapping(fields.get("auth"), "auth")
    handler_id = fields.get("event_handler_id")
    expires_in = auth.get("expires_in")
    return DocumentEvent(
        event_type=event_type,
        document_id=_positive(ids.get("ID"), "data[FIELDS][ID]"),
        entity_type_id=_positive(ids.get("ENTITY_TYPE_ID"), "data[FIELDS][ENTITY_TYPE_ID]"),
        entity_id=_positive(ids.get("ENTITY_ID"), "data[FIELDS][ENTITY_ID]"),
        handler_id=None if handler_id is None else _positive(handler_id, "event_handler_id"),
        timestamp=_timestamp(fields.get("ts")),
        domain=_text(auth, "domain", required=True),
        member_id=_text(auth, "member_id", required=True),
        client_endpoint=_text(auth, "client_endpoint"),
        server_endpoint=_text(auth, "server_endpoint"),
        scope=_text(auth, "scope"),
        status=_text(auth, "status"),
        expires_in=None if expires_in in (None, "") else _integer(expires_in, "auth[expires_in]"),
        application_token=_text(auth, "application_token", required=True),
        access_token=_text(auth, "access_token") or None,
        refresh_token=_text(auth, "refresh_token") or None,
    )


def _flat_query(form: Mapping[str, Any]) -> str:
    """A flat ``{"data[FIELDS][ID]": "1"}`` mapping (a MultiDict too) as a query string."""
    items = form.items()
    pairs = []
    try:
        for key, value in items:
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidEventError("", "a flat form must map text keys to text values")
            pairs.append(
                quote_plus(key, safe="", errors="surrogateescape")
                + "="
                + quote_plus(value, safe="", errors="surrogateescape")
            )
    except UnicodeError:
        raise InvalidEventError("", "a key or value cannot be encoded as UTF-8") from None
    return "&".join(pairs)


def _event_type(name: object) -> DocumentEventType:
    if name is None or name == "":
        raise InvalidEventError("event", "missing")
    if not isinstance(name, str):
        raise InvalidEventError("event", "not a string")
    try:
        return DocumentEventType(name)
    except ValueError:
        raise UnknownEventError(name) from None


def _mapping(value: object, field: str) -> Mapping[str, Any]:
    if value is None:
        raise InvalidEventError(field, "missing")
    if not isinstance(value, Mapping):
        raise InvalidEventError(field, "not an array")
    return value


def _integer(value: object, field: str) -> int:
    if value is None or value == "":
        raise InvalidEventError(field, "missing")
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidEventError(field, "not a decimal integer")
    number = int(value)
    if not 0 <= number < 10**18:
        raise InvalidEventError(field, "out of range")
    return number


def _positive(value: object, field: str) -> int:
    number = _integer(value, field)
    if number <= 0:
        raise InvalidEventError(field, "not a positive integer")
    return number


def _timestamp(value: object) -> datetime:
    if isinstance(value, str) and not _TS_DIGITS.fullmatch(value):
        raise InvalidEventError("ts", "not a unix time")
    seconds = _integer(value, "ts")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidEventError("ts", "out of range") from None


def _text(auth: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = auth.get(key)
    field = f"auth[{key}]"
    if value is None or value == "":
        if required:
            raise InvalidEventError(field, "missing")
        return ""
    if not isinstance(value, str):
        raise InvalidEventError(field, "not a string")
    return value
