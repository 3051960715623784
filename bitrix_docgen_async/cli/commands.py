"""The commands that work on a portal through an incoming webhook.

The webhook comes from ``--webhook`` or ``BITRIX_WEBHOOK_URL`` and is never printed: its code
is a password. Results go to stdout as tables, progress to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bitrix_docgen_async.auth import WebhookAuth
from bitrix_docgen_async.bulk import GenerationResult
from bitrix_docgen_async.cli.errors import EXIT_FAILED, EXIT_OK, UsageError, redact
from bitrix_docgen_async.cli.output import make_console, make_table
from bitrix_docgen_async.cli.progress import LiveProgress, client_status, closing
from bitrix_docgen_async.cli.ranges import entity_type_name
from bitrix_docgen_async.client import DocgenClient
from bitrix_docgen_async.core.pdf import PollSchedule
from bitrix_docgen_async.core.ratelimit import RateLimit
from bitrix_docgen_async.env import OAUTH_ENV, WEBHOOK_ENV, EnvConfigError, read_env
from bitrix_docgen_async.errors import BitrixError, JournalError, NotFoundError, UnknownFieldsError
from bitrix_docgen_async.journal import check_journal_file
from bitrix_docgen_async.models import Document

__all__ = ["WEBHOOK_ENV", "download", "generate", "wait", "webhook_client"]

#: Tables list every item up to this many; beyond it only the ones that went wrong.
_FULL_TABLE = 100
#: Failures kept for the report of a bulk run (the rest are only counted).
_KEPT_FAILURES = 20
#: Downloads started together (the client runs 8 at a time; this bounds the waiting ones).
_DOWNLOAD_WINDOW = 400


def webhook_client(args: argparse.Namespace, **options: Any) -> DocgenClient:
    """A client for ``--webhook``, or the environment as ``DocgenClient.from_env`` reads it.

    ``$BITRIX_WEBHOOK_URL``, or else an OAuth application's ``BITRIX_CLIENT_ENDPOINT``,
    ``BITRIX_ACCESS_TOKEN``, ``BITRIX_REFRESH_TOKEN``, ``BITRIX_CLIENT_ID`` and
    ``BITRIX_CLIENT_SECRET`` (a refreshed token lives as long as the command).

    Args:
        args: the parsed command line (``webhook``, ``plan``, ``prog``).
        options: more ``DocgenClient`` keyword arguments.

    Raises:
        UsageError: no credentials, or not a webhook URL (the message never shows a value).
    """
    plan = RateLimit.enterprise() if args.plan == "enterprise" else RateLimit.standard()
    url = (args.webhook or "").strip()
    try:
        if url:
            return DocgenClient(WebhookAuth(url), rate_limit=plan, **options)
        credentials = read_env()
        if credentials.webhook_url is not None:
            return DocgenClient(WebhookAuth(credentials.webhook_url), rate_limit=plan, **options)
    except EnvConfigError as exc:
        if any(os.environ.get(name) for name in OAUTH_ENV.values()):
            raise UsageError(f"{exc}; or pass --webhook URL", prog=args.prog) from None
        raise UsageError(
            f"no webhook: pass --webhook URL or set {WEBHOOK_ENV} "
            f"(or {', '.join(OAUTH_ENV.values())} for an OAuth application)",
            prog=args.prog,
        ) from None
    except ValueError as exc:
        raise UsageError(str(exc), prog=args.prog) from None
    oauth = credentials.oauth
    if oauth is None:  # read_env gives one or the other
        raise UsageError(f"no webhook: pass --webhook URL or set {WEBHOOK_ENV}", prog=args.prog)
    return DocgenClient.from_oauth(
        client_endpoint=oauth.client_endpoint,
        access_token=oauth.access_token,
        refresh_token=oauth.refresh_token,
        client_id=oauth.client_id,
        client_secret=oauth.client_secret,
        rate_limit=plan,
        **options,
    )


def _problem(error: BaseException) -> str:
    return redact(f"{type(error).__name__}: {error}")


async def _check_template(args: argparse.Namespace, client: DocgenClient) -> None:
    """Fail early (one request) when the template is missing or not bound to the entity type."""
    try:
        template = await client.templates.get(args.template)
    except NotFoundError:
        raise UsageError(f"template {args.template} not found", prog=args.prog) from None
    bound = {b.partition("_")[0] for b in template.entity_type_ids}
    if bound and all(b.isdigit() for b in bound) and str(args.entity_type) not in bound:
        names = ", ".join(sorted(entity_type_name(int(b)) for b in bound))
        raise UsageError(
            f"template {template.id} is bound to {names}, "
            f"not to {entity_type_name(args.entity_type)}",
            prog=args.prog,
        )


def _check_journal(args: argparse.Namespace) -> None:
    """Fail early when the journal belongs to another run or is not a journal at all."""
    if args.journal is None:
        return
    try:
        check_journal_file(args.journal, template_id=args.template, entity_type_id=args.entity_type)
    except JournalError as exc:
        raise UsageError(f"cannot use the journal: {exc}", prog=args.prog) from None
    except OSError as exc:
        raise UsageError(f"cannot use the journal {args.journal}: {exc}", prog=args.prog) from None


async def generate(args: argparse.Namespace) -> int:
    """``generate``: one document per entity; 1 if any entity failed."""
    out, err = make_console(), make_console(stderr=True)
    _check_journal(args)
    total = len(args.ids)
    download_dir: Path | None = Path(args.out) if args.out is not None else None
    wait_pdf = bool(args.wait_pdf or download_dir is not None)
    steps = ["added"] + ["converted"] * wait_pdf + ["downloaded"] * (download_dir is not None)
    counts = {"results": 0, "new": 0, "skipped": 0, "pdfs": 0, "saved": 0, "failed": 0}
    failures: list[GenerationResult] = []
    schedule = PollSchedule(min_conversion=args.pdf_first_check)
    async with webhook_client(args, pdf_schedule=schedule) as client:
        await _check_template(args, client)
        started = time.perf_counter()
        try:
            async with (
                LiveProgress(err, total, steps, partial(client_status, client.stats)) as live,
                closing(
                    client.documents.generate_many(
                        template_id=args.template,
                        entity_type_id=args.entity_type,
                        entity_ids=args.ids,
                        values=args.values,
                        wait_pdf=wait_pdf,
                        download_dir=download_dir,
                        journal=args.journal,
                        on_progress=live.on_progress,
                        pdf_timeout=args.pdf_timeout,
                        check_values=args.check_values,
                    )
                ) as stream,
            ):
                async for result in stream:
                    _tally(counts, failures, result, wait_pdf)
        except UnknownFieldsError as exc:
            # Checked against template.getfields before any add: nothing was generated.
            raise UsageError(
                f"{exc} (--no-check-values sends them anyway)", prog=args.prog
            ) from None
        except asyncio.CancelledError:
            hint = (
                f"the journal {args.journal} is consistent: run the same command to resume"
                if args.journal is not None
                else "documents added so far stay on the portal; --journal makes runs resumable"
            )
            err.print(f"interrupted: {hint}", markup=False, soft_wrap=True)
            raise
        wall = time.perf_counter() - started
        stats = client.stats
    rows: list[tuple[str, object]] = [
        ("entities", counts["results"]),
        ("done in this run", counts["new"]),
        ("done by an earlier run (journal)", counts["skipped"]),
    ]
    if wait_pdf:
        rows.append(("PDFs ready", counts["pdfs"]))
    if download_dir is not None:
        rows.append(("PDFs saved", f"{counts['saved']} in {download_dir}/"))
    rows += [
        ("failed", counts["failed"]),
        ("HTTP requests", stats.http_requests),
        ("wall time", f"{wall:.1f} s"),
    ]
    out.print(make_table("Summary", ("", ""), rows, header=False))
    if failures:
        shown = [(r.entity_id, r.document_id or "", _problem(r.error)) for r in failures if r.error]
        title = f"Failed ({counts['failed']}, first {len(shown)} shown)"
        out.print(make_table(title, ("entity", "document", "error"), shown))
    return EXIT_FAILED if counts["failed"] else EXIT_OK


def _tally(
    counts: dict[str, int], failures: list[GenerationResult], result: GenerationResult, pdf: bool
) -> None:
    counts["results"] += 1
    if result.skipped:
        counts["skipped"] += 1
    elif result.error is not None:
        counts["failed"] += 1
        if len(failures) < _KEPT_FAILURES:
            failures.append(result)
    else:
        counts["new"] += 1
        counts["pdfs"] += int(pdf)
        counts["saved"] += int(result.pdf_path is not None)


def _pdf_cell(document: Document) -> str:
    if document.pdf_failed:
        code = document.transformation_error_code or ""
        return f"failed {code} {document.transformation_error_message or ''}".strip()
    return "ready" if document.pdf_ready else "pending"


def _print_report(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], ok: Sequence[bool]
) -> None:
    """Every row when there are few; else only the rows that went wrong, and a count line."""
    out = make_console()
    bad = sum(not good for good in ok)
    if len(rows) > _FULL_TABLE:
        rows = [row for row, good in zip(rows, ok, strict=True) if not good]
        title = f"{title}: {len(ok) - bad} of {len(ok)} ok; problems:"
    if rows:
        out.print(make_table(title, columns, rows))
    else:
        out.print(f"{title}: all {len(ok)} ok", markup=False, soft_wrap=True)


async def wait(args: argparse.Namespace) -> int:
    """``wait``: until each document's PDF is ready or failed; 1 if any is not ready."""
    err = make_console(stderr=True)
    ids = list(args.ids)
    outcomes: dict[int, Document | BitrixError] = {}
    async with webhook_client(args) as client:
        poller = client.pdf_poller
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.timeout
        queue = poller.watch(ids)
        try:
            status = partial(client_status, client.stats)
            async with LiveProgress(err, len(ids), ["converted"], status) as live:
                while len(outcomes) < len(ids) and (left := deadline - loop.time()) > 0:
                    try:
                        doc_id, outcome = await asyncio.wait_for(queue.get(), left)
                    except TimeoutError:
                        break
                    outcomes[doc_id] = outcome
                    live.set(converted=len(outcomes))
        finally:
            poller.unwatch(queue)
    rows: list[tuple[object, ...]] = []
    ok: list[bool] = []
    for doc_id in ids:
        got = outcomes.get(doc_id)
        if isinstance(got, Document):
            entity = f"{entity_type_name(got.entity_type_id)} {got.entity_id}"
            rows.append((doc_id, got.number, entity, _pdf_cell(got)))
            ok.append(got.pdf_ready)
        else:
            state = _problem(got) if got is not None else "pending at the deadline"
            rows.append((doc_id, "", "", state))
            ok.append(False)
    _print_report("PDFs", ("document", "number", "entity", "PDF"), rows, ok)
    return EXIT_OK if all(ok) else EXIT_FAILED


async def download(args: argparse.Namespace) -> int:
    """``download``: save each document's file to ``--out``; 1 if any download failed."""
    err = make_console(stderr=True)
    ids = list(args.ids)
    folder = Path(args.out)
    saved: dict[int, Path | BaseException] = {}
    async with webhook_client(args) as client:
        status = partial(client_status, client.stats)
        async with LiveProgress(err, len(ids), ["downloaded"], status) as live:

            async def one(doc_id: int) -> None:
                try:
                    saved[doc_id] = await client.documents.download(doc_id, folder, args.kind)
                except (BitrixError, OSError) as exc:
                    saved[doc_id] = exc
                live.set(downloaded=len(saved))

            for offset in range(0, len(ids), _DOWNLOAD_WINDOW):
                window = ids[offset : offset + _DOWNLOAD_WINDOW]
                await asyncio.gather(*(one(doc_id) for doc_id in window))
    rows = [
        (doc_id, str(got) if isinstance(got, Path) else _problem(got))
        for doc_id, got in ((i, saved[i]) for i in ids)
    ]
    ok = [isinstance(saved[i], Path) for i in ids]
    _print_report(f"Files ({args.kind})", ("document", "file"), rows, ok)
    return EXIT_OK if all(ok) else EXIT_FAILED
