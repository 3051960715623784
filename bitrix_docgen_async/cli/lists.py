"""``templates list``, ``numerators list`` and ``documents list``: tables on stdout.

No link is shown: the ``*Machine`` URLs carry access tokens.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
from typing import Any

from bitrix_docgen_async.cli.commands import webhook_client
from bitrix_docgen_async.cli.errors import EXIT_OK
from bitrix_docgen_async.cli.output import make_console, make_table
from bitrix_docgen_async.cli.ranges import entity_type_name
from bitrix_docgen_async.core.paging import following_start
from bitrix_docgen_async.models import Document

__all__ = ["list_documents", "list_numerators", "list_templates"]


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else ""


def _binding(code: str) -> str:
    """``deal`` for ``"2"``; other bindings (``"2_category_0"``, providers) as they are."""
    return entity_type_name(int(code)) if code.isdigit() else code


def _flag(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


async def list_templates(args: argparse.Namespace) -> int:
    """Every template the webhook's user may use."""
    out = make_console()
    async with webhook_client(args) as client:
        templates = [t async for t in client.templates.list()]
        # List rows may lack the bindings (the docs show them, some portals do not): complete
        # those with ``get``, which the client batches 50 to a request.
        partial = [t.id for t in templates if not t.entity_type_ids]
        if partial:
            full = await asyncio.gather(*(client.templates.get(i) for i in partial))
            by_id = {t.id: t for t in full}
            templates = [by_id.get(t.id, t) for t in templates]
    rows = [
        (
            t.id,
            t.name,
            ", ".join(_binding(b) for b in t.entity_type_ids),
            t.numerator_id or "",
            t.region or "",
            _flag(t.active),
        )
        for t in templates
    ]
    columns = ("id", "name", "entity types", "numerator", "region", "active")
    out.print(make_table(f"Templates ({len(rows)})", columns, rows))
    return EXIT_OK


async def list_numerators(args: argparse.Namespace) -> int:
    """Every numerator."""
    out = make_console()
    async with webhook_client(args) as client:
        numerators = [n async for n in client.numerators.list()]
    rows = [(n.id, n.name, n.template, n.code or "") for n in numerators]
    out.print(make_table(f"Numerators ({len(rows)})", ("id", "name", "template", "code"), rows))
    return EXIT_OK


async def list_documents(args: argparse.Namespace) -> int:
    """Documents, newest first, filtered by entity and template; ``--limit 0`` for all."""
    out = make_console()
    filters: dict[str, Any] = {}
    if args.entity_type is not None:
        filters["entityTypeId"] = args.entity_type
    if args.entity_id is not None:
        filters["entityId"] = args.entity_id
    if args.template is not None:
        filters["templateId"] = args.template
    documents: list[Document] = []
    total: int | None = None
    async with webhook_client(args) as client:
        listing = client.documents.list(filter=filters or None, order={"id": "desc"})
        if args.limit == 0:
            documents = [d async for d in listing]
        else:
            start: int | None = 0
            while start is not None and len(documents) < args.limit:
                page = await listing.page(start)
                documents.extend(page.items)
                # an empty page or a next that does not advance ends the walk (core.paging)
                total, start = page.total, following_start(start, page.next, len(page.items))
            documents = documents[: args.limit]
    rows = [
        (
            d.id,
            d.number,
            d.title,
            d.template_id,
            f"{entity_type_name(d.entity_type_id)} {d.entity_id}",
            _when(d.created_time),
            "failed" if d.pdf_failed else ("ready" if d.pdf_ready or d.pdf_id else "pending"),
        )
        for d in documents
    ]
    shown = f"{len(rows)} of {total}" if total is not None and total > len(rows) else len(rows)
    columns = ("id", "number", "title", "template", "entity", "created", "PDF")
    out.print(make_table(f"Documents ({shown})", columns, rows))
    return EXIT_OK
