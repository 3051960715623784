"""What the fake document generator stores: templates, documents, event bindings.

These are internal records; the handlers turn them into the wire shapes of each method (which
differ from method to method, see docs/portal.md#wire-quirks). Times are wall-clock ``datetime``
values for the ``createTime``/``updateTime`` fields; the PDF conversion runs on the portal's clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

__all__ = [
    "DocumentRecord",
    "EventBinding",
    "OfflineRow",
    "PendingEvent",
    "Rendered",
    "TemplateRecord",
    "now",
]


def now() -> datetime:
    """The local wall-clock time, to the second, with its offset."""
    return datetime.now().astimezone().replace(microsecond=0)


@attrs.define
class TemplateRecord:
    """A stored template.

    Attributes:
        id: the template id.
        name: its name.
        region: its region code (``"de"``, ``"uk"``, ...).
        numerator_id: the numerator that numbers its documents.
        entity_type_ids: the bindings as sent (``"2"``, ``"2_category_0"``, ``"177_1"``).
        users: access codes (``"UA"``, ``"U1"``).
        file: the ``.docx`` bytes.
        placeholders: the ``{Placeholder}`` names found in ``file``.
        active: ``"Y"``/``"N"``.
        with_stamps: ``"Y"``/``"N"``.
        sort: the sort index.
        code: the template code (REST templates have none).
        is_deleted: ``template.delete`` was called.
        hidden: the per-application template ``document.upload`` creates (not listed).
        created: creation time.
        updated: last update time.
    """

    id: int
    name: str
    region: str
    numerator_id: int
    entity_type_ids: list[str]
    users: list[str]
    file: bytes = attrs.field(repr=False)
    placeholders: list[str]
    active: str = "Y"
    with_stamps: str = "N"
    sort: int = 500
    code: str | None = None
    is_deleted: bool = False
    hidden: bool = False
    created: datetime = attrs.field(factory=now)
    updated: datetime = attrs.field(factory=now)

    def binds(self, entity_type_id: int) -> bool:
        """Whether the template is bound to the entity type (pipeline suffixes not checked)."""
        prefix = str(entity_type_id)
        return any(code == prefix or code.startswith(prefix + "_") for code in self.entity_type_ids)


@attrs.frozen
class Rendered:
    """The files of a finished conversion, kept while an update's conversion runs.

    Attributes:
        pdf: the PDF.
        image: the preview image.
        pdf_id: its ``pdfId``.
        image_id: its ``imageId``.
    """

    pdf: bytes = attrs.field(repr=False)
    image: bytes = attrs.field(repr=False)
    pdf_id: int
    image_id: int


@attrs.define
class DocumentRecord:
    """A stored document.

    Attributes:
        id: the document id.
        template_id: its template.
        entity_type_id: the CRM entity type.
        entity_id: the CRM item.
        title: the title (template name + number for generated documents).
        number: the document number.
        values: the values passed in (service keys are added on output).
        stamps_enabled: stamps and signatures on.
        created_by: the creating user.
        updated_by: the user of the last update (``None`` before one).
        docx: the document's ``.docx`` bytes.
        pdf: the PDF once converted (or uploaded).
        image: the preview image once converted (or uploaded).
        ready_at: the portal-clock time at which the conversion finishes.
        failed: the conversion fails (at ``ready_at``).
        file_ids: ``fileId``, ``imageId``, ``pdfId`` and ``emailDiskFile``.
        previous: the previous render's files, shown while an update's conversion runs.
        uploaded: made by ``document.upload`` rather than rendered from the template.
        public_path: the path of the public link (``/pub/~...``), if enabled; the link is
            built on the host the caller used.
        created: creation time.
        updated: last update time.
    """

    id: int
    template_id: int
    entity_type_id: int
    entity_id: int
    title: str
    number: str
    values: dict[str, Any]
    stamps_enabled: bool
    created_by: int
    docx: bytes = attrs.field(repr=False)
    pdf: bytes | None = attrs.field(default=None, repr=False)
    image: bytes | None = attrs.field(default=None, repr=False)
    ready_at: float = 0.0
    failed: bool = False
    file_ids: tuple[int, int, int, int] = (0, 0, 0, 0)
    previous: Rendered | None = None
    updated_by: int | None = None
    uploaded: bool = False
    public_path: str | None = None
    created: datetime = attrs.field(factory=now)
    updated: datetime = attrs.field(factory=now)


@attrs.frozen
class EventBinding:
    """One ``event.bind`` registration.

    Attributes:
        application: the auth identity that bound it (one set of bindings per application).
        event: the upper-case event name.
        handler: the handler URL (``""`` for offline events).
        auth_type: the user the handler runs as (``0``: the user who triggered the event).
        offline: an offline event (kept in the portal's queue, not POSTed).
        auth_connector: the source key of an offline binding (``""``: none); its queue skips
            the changes made by calls carrying the same ``auth_connector``.
        min_timeout: ``options[minTimeout]`` of an ``ONOFFLINEEVENT`` binding, seconds.
    """

    application: str
    event: str
    handler: str
    auth_type: int = 0
    offline: bool = False
    auth_connector: str = ""
    min_timeout: float = 1.0


@attrs.frozen
class PendingEvent:
    """An event waiting to be delivered to a bound handler.

    Attributes:
        binding: the binding it goes to.
        fields: ``data[FIELDS]`` (``ID``, ``ENTITY_TYPE_ID``, ``ENTITY_ID`` as strings).
        ts: unix time of the event.
        data: the whole ``data`` of the delivery when it is not ``{"FIELDS": fields}``
            (``[]`` for ``ONOFFLINEEVENT``, the application's data for ``ONAPPINSTALL``).
        auth: the whole ``auth`` of the delivery when it is not the usual one (the
            install and uninstall events carry their own).
    """

    binding: EventBinding
    fields: dict[str, str]
    ts: int
    data: Any = None
    auth: dict[str, str] | None = None


@attrs.define
class OfflineRow:
    """One entry of an application's offline event queue (docs/portal.md#offline-events).

    Attributes:
        id: ``ID``, never reused.
        application: the application whose queue it is in.
        connector: ``CONNECTOR_ID``, the ``auth_connector`` of the binding (``""``: none).
        event: ``EVENT_NAME`` (upper case).
        data: ``EVENT_DATA`` (``{"FIELDS": {...}}``).
        message_id: ``MESSAGE_ID``: the same for every change of one object by one event.
        timestamp: ``TIMESTAMP_X``, the last change (wall clock, to the second).
        process_id: ``PROCESS_ID``, the reservation (``""``: not reserved).
        reserved_at: when it was reserved, on the portal's clock.
        error: marked by ``event.offline.error``.
    """

    id: int
    application: str
    connector: str
    event: str
    data: dict[str, Any]
    message_id: str
    timestamp: datetime
    process_id: str = ""
    reserved_at: float | None = None
    error: bool = False
