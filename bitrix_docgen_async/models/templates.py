"""Templates (``crm.documentgenerator.template.*``)."""

from __future__ import annotations

from datetime import datetime

import attrs

from bitrix_docgen_async.models.common import redacted

__all__ = ["Template"]


@attrs.frozen
class Template:
    """A document template.

    ``list`` rows carry fewer fields than ``add``/``get``/``update`` (no flags, no times), so all
    but ``id`` and ``name`` are optional.

    Attributes:
        id: the template id.
        name: the template name.
        region: the region code (``"de"``) of a preinstalled region or the id of a custom one.
        code: the symbolic code, if set.
        download_url: the DOCX link for a logged-in browser user.
        download_machine: the DOCX link for machine access; carries a token, never in ``repr()``.
        file_id: the Drive file of the template, when the portal reports it.
        body_type: the template body class, when the portal reports it.
        numerator_id: the numerator that issues document numbers.
        with_stamps: whether documents get stamps and signatures.
        active: whether the template is active.
        module_id: the module that owns the template (``"crm"``).
        is_deleted: whether the template is in the recycle bin.
        sort: the sort index.
        created_time: when the template was created.
        updated_time: when the template was last changed.
        created_by: the user who created it.
        updated_by: the user who last changed it.
        entity_type_ids: the bindings, e.g. ``("2",)`` or ``("2_category_0", "31_1")``; kept as
            strings because pipeline bindings and provider class names are not numbers.
        users: the access codes of the users who may use it, e.g. ``("UA",)``.
        providers: the data provider classes (non-CRM templates).
    """

    id: int
    name: str
    region: str | None = None
    code: str | None = None
    download_url: str | None = None
    download_machine: str | None = attrs.field(default=None, repr=redacted)
    file_id: int | None = None
    body_type: str | None = None
    numerator_id: int | None = None
    with_stamps: bool | None = None
    active: bool | None = None
    module_id: str | None = None
    is_deleted: bool | None = None
    sort: int | None = None
    created_time: datetime | None = None
    updated_time: datetime | None = None
    created_by: int | None = None
    updated_by: int | None = None
    entity_type_ids: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
