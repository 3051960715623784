"""The document events and the handler bindings that ``event.get`` lists.

Binding handlers needs application (OAuth) auth; the events arrive as form posts that
:mod:`bitrix_docgen_async.receiver` parses.
"""

from __future__ import annotations

import enum

import attrs

__all__ = ["DocumentEventType", "EventBinding"]


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
