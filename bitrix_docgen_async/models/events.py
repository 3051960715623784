"""The document events and the handler bindings that ``event.get`` lists.

Binding handlers needs application (OAuth) auth; the events arrive as form posts that
:mod:`bitrix_docgen_async.receiver` parses.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

__all__ = [
    "AppInstallEvent",
    "AppUninstallEvent",
    "DocumentEvent",
    "DocumentEventType",
    "EventBinding",
]


class DocumentEventType(enum.StrEnum):
    """The three document generator events.

    The values are upper case, as the portal delivers them; parsing accepts any case, so
    ``DocumentEventType("onCrmDocumentGeneratorDocumentAdd")`` is :attr:`ADD`.
    """

    ADD = "ONCRMDOCUMENTGENERATORDOCUMENTADD"
    UPDATE = "ONCRMDOCUMENTGENERATORDOCUMENTUPDATE"
    DELETE = "ONCRMDOCUMENTGENERATORDOCUMENTDELETE"

    @classmethod
    def _missing_(cls, value: object) -> DocumentEventType | None:
        """Find the member whatever the case of ``value``; ``None`` (a ``ValueError``) if none."""
        if isinstance(value, str):
            wanted = value.strip().upper()
            for member in cls:
                if member.value == wanted:
                    return member
        return None


@attrs.frozen
class EventBinding:
    """One registered event handler, as ``event.get`` returns it.

    Attributes:
        event: the event name (upper case, e.g. ``"ONCRMDOCUMENTGENERATORDOCUMENTADD"``).
        handler: the URL the portal posts the event to.
        auth_type: the user the handler runs as; ``0`` means the user who triggered the event.
        offline: whether this is an offline event (kept in a queue instead of posted).
    """

    event: str
    handler: str
    auth_type: int = 0
    offline: bool = False


@attrs.frozen
class DocumentEvent:
    """One delivery of ``ONCRMDOCUMENTGENERATORDOCUMENTADD``, ``...UPDATE`` or ``...DELETE``.

    :func:`bitrix_docgen_async.receiver.parse_event` builds it from the form the portal posts.
    The event carries ids only: fetch the document with ``crm.documentgenerator.document.get``
    (it is gone after a DELETE). The tokens are kept out of ``repr``.

    Attributes:
        event_type: ADD (also after ``document.upload``), UPDATE or DELETE.
        document_id: ``data[FIELDS][ID]``, the document.
        entity_type_id: ``data[FIELDS][ENTITY_TYPE_ID]``, the CRM entity type of the document.
        entity_id: ``data[FIELDS][ENTITY_ID]``, the CRM item it was generated for.
        handler_id: ``event_handler_id``, the binding that caused this delivery (``None`` if
            the portal left it out).
        timestamp: ``ts``, when the event happened (aware, UTC).
        domain: ``auth[domain]``, the portal's host name.
        member_id: ``auth[member_id]``, the portal's unique id.
        client_endpoint: ``auth[client_endpoint]``, the portal's REST base URL (``""`` if absent).
        server_endpoint: ``auth[server_endpoint]``, the OAuth server's REST URL (``""`` if absent).
        scope: ``auth[scope]``, the application's scopes (``""`` if absent).
        status: ``auth[status]``, the application's status letter (``""`` if absent).
        expires_in: ``auth[expires_in]``, seconds the access token lives (``None`` if absent).
        application_token: ``auth[application_token]``, already checked by the receiver.
        access_token: ``auth[access_token]``, a token of the user who caused the event; ``None``
            when no user did (automation, agents).
        refresh_token: ``auth[refresh_token]`` (only some events carry it).
        message_id: ``MESSAGE_ID`` of an event taken from the offline queue
            (``client.events.offline``), ``None`` for a posted one.
        queue_id: ``ID`` of that offline queue row, ``None`` for a posted event.
    """

    event_type: DocumentEventType
    document_id: int
    entity_type_id: int
    entity_id: int
    handler_id: int | None
    timestamp: datetime
    domain: str
    member_id: str
    client_endpoint: str = ""
    server_endpoint: str = ""
    scope: str = ""
    status: str = ""
    expires_in: int | None = None
    application_token: str = attrs.field(default="", repr=False)
    access_token: str | None = attrs.field(default=None, repr=False)
    refresh_token: str | None = attrs.field(default=None, repr=False)
    message_id: str | None = None
    queue_id: int | None = None


@attrs.frozen
class AppInstallEvent:
    """``ONAPPINSTALL``: the application was installed on a portal (docs/portal.md#events).

    It brings the portal's ``application_token``, which signs every later event of that portal.
    It cannot be verified by its token (it is the first one): ``EventReceiver(tokens=...)``
    stores it only for a ``member_id`` it does not know yet. The tokens are kept out of ``repr``.

    Attributes:
        member_id: ``auth[member_id]``, the portal's unique id.
        domain: ``auth[domain]``.
        application_token: ``auth[application_token]``.
        client_endpoint: ``auth[client_endpoint]`` (``""`` if absent).
        server_endpoint: ``auth[server_endpoint]`` (``""`` if absent).
        scope: ``auth[scope]`` (``""`` if absent).
        status: ``auth[status]`` (``""`` if absent).
        access_token: ``auth[access_token]`` of the installing user (``None`` if absent).
        refresh_token: ``auth[refresh_token]`` (``None`` if absent).
        expires_in: ``auth[expires_in]`` (``None`` if absent).
        version: ``data[VERSION]`` (``""`` if absent).
        language: ``data[LANGUAGE_ID]`` (``""`` if absent).
        timestamp: ``ts`` (aware, UTC).
    """

    member_id: str
    domain: str
    application_token: str = attrs.field(repr=False)
    timestamp: datetime
    client_endpoint: str = ""
    server_endpoint: str = ""
    scope: str = ""
    status: str = ""
    access_token: str | None = attrs.field(default=None, repr=False)
    refresh_token: str | None = attrs.field(default=None, repr=False)
    expires_in: int | None = None
    version: str = ""
    language: str = ""


@attrs.frozen
class AppUninstallEvent:
    """``ONAPPUNINSTALL``: the application was removed from a portal (no tokens but the
    ``application_token``, which is the only check there is; docs/portal.md#events).

    Attributes:
        member_id: ``auth[member_id]``.
        domain: ``auth[domain]``.
        clean: ``data[CLEAN]``: the user chose to delete the application's data.
        timestamp: ``ts`` (aware, UTC).
    """

    member_id: str
    domain: str
    clean: bool
    timestamp: datetime
