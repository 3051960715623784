"""Receiving the document generator's events: ``EventReceiver`` and ``parse_event``.

Bitrix24 POSTs ``ONCRMDOCUMENTGENERATORDOCUMENTADD`` / ``...UPDATE`` / ``...DELETE`` to the
handler URLs bound with ``event.bind`` as PHP-style forms (docs/portal.md#events)::

    async def on_event(event: DocumentEvent) -> None:
        document = await client.documents.get(event.document_id)

    receiver = EventReceiver(application_token=stored_token, handler=on_event)
    web.run_app(receiver.app("/bitrix/events"))

An application installed on many portals passes ``tokens=`` (a mapping or an async lookup by
``member_id``) instead of one ``application_token``: ``ONAPPINSTALL`` fills it for portals not
known yet, ``ONAPPUNINSTALL`` clears it.

:class:`EventReceiver` checks ``auth[application_token]`` in constant time, answers at once and
runs the handler from a bounded queue; :func:`parse_event` turns a body into a typed
:class:`DocumentEvent`.
"""

from bitrix_docgen_async.models.events import (
    AppInstallEvent,
    AppUninstallEvent,
    DocumentEvent,
    DocumentEventType,
)
from bitrix_docgen_async.receiver.parsing import (
    InvalidEventError,
    UnknownEventError,
    parse_app_install,
    parse_app_uninstall,
    parse_event,
    parse_offline_row,
)
from bitrix_docgen_async.receiver.server import EventReceiver
from bitrix_docgen_async.receiver.tokens import TokenBook, TokenLookup, TokenSource
from bitrix_docgen_async.receiver.workers import EventHandler, ReceiverStats

__all__ = [
    "AppInstallEvent",
    "AppUninstallEvent",
    "DocumentEvent",
    "DocumentEventType",
    "EventHandler",
    "EventReceiver",
    "InvalidEventError",
    "ReceiverStats",
    "TokenBook",
    "TokenLookup",
    "TokenSource",
    "UnknownEventError",
    "parse_app_install",
    "parse_app_uninstall",
    "parse_event",
    "parse_offline_row",
]
