"""The commands that work on a portal through an incoming webhook.

The webhook comes from ``--webhook`` or ``BITRIX_WEBHOOK_URL`` and is never printed: its code
is a password. Results go to stdout as tables, progress to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import tempfile
import time
from collections.abc import Coroutine, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from bitrix_docgen_async.auth import WebhookAuth
from bitrix_docgen_async.cli.demo import lower_bound
from bitrix_docgen_async.cli.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    UsageError,
    redact,
)
from bitrix_docgen_async.cli.output import make_console, make_table
from bitrix_docgen_async.cli.presets import Limits, plan_limits
from bitrix_docgen_async.cli.progress import (
    LiveProgress,
    PlainProgress,
    client_status,
    closing,
    format_duration,
)
from bitrix_docgen_async.cli.ranges import entity_type_name
from bitrix_docgen_async.client import DocgenClient
from bitrix_docgen_async.env import OAUTH_ENV, WEBHOOK_ENV, EnvConfigError, read_env
from bitrix_docgen_async.errors import (
    BitrixError,
    JournalError,
    NotFoundError,
    OutcomeUnknownError,
    TransportError,
    UnknownFieldsError,
)
from bitrix_docgen_async.limiter import Clock, Sleep
from bitrix_docgen_async.models import Document
from bitrix_docgen_async.session import ClientStats
from bitrix_docgen_async.workflows.bulk import GenerationResult
from bitrix_docgen_async.workflows.journal import Journal, check_journal_file

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "GIVE_UP_AFTER",
    "PROGRESS_EVERY",
    "WEBHOOK_ENV",
    "PortalUnreachable",
    "Watchdog",
    "download",
    "generate",
    "json_line",
    "limits_of",
    "wait",
    "webhook_client",
]

#: Tables list every item up to this many; beyond it only the ones that went wrong.
_FULL_TABLE = 100
#: Distinct errors listed after a bulk run (the rest are only counted).
_KEPT_FAILURES = 20
#: Entity ids shown per distinct error.
_SHOWN_IDS = 5
#: ``generate --give-up-after``: seconds without an answer (while requests fail) before exit 3.
GIVE_UP_AFTER = 180.0
#: ``generate --progress-every``: seconds between plain progress lines at the longest.
PROGRESS_EVERY = 30.0
#: Seconds between looks at the template while the portal cannot be reached.
_RECHECK = 5.0
#: Downloads started together (the client runs 8 at a time; this bounds the waiting ones).
_DOWNLOAD_WINDOW = 400


def limits_of(args: argparse.Namespace) -> Limits:
    """The limits of ``--plan`` with the ``--rate``/``--burst``/``--budget``/``--window``
    overrides (the same flags as the emulator's, docs/portal.md#limits)."""
    return plan_limits(args.plan).overridden(
        rate=args.rate, burst=args.burst, budget=args.budget, window=args.window
    )


def webhook_client(args: argparse.Namespace, **options: Any) -> DocgenClient:
    """A client for ``--webhook``, or the environment as ``DocgenClient.from_env`` reads it.

    ``$BITRIX_WEBHOOK_URL``, or else an OAuth application's ``BITRIX_CLIENT_ENDPOINT``,
    ``BITRIX_ACCESS_TOKEN``, ``BITRIX_REFRESH_TOKEN``, ``BITRIX_CLIENT_ID`` and
    ``BITRIX_CLIENT_SECRET`` (a refreshed token lives as long as the command); paced by the
    limits of ``--plan`` and its overrides.

    Args:
        args: the parsed command line (``webhook``, ``plan``, the limit flags, ``prog``).
        options: more ``DocgenClient`` keyword arguments.

    Raises:
        UsageError: no credentials, or not a webhook URL (the message never shows a value).
    """
    limits = limits_of(args)
    pace: dict[str, Any] = {"rate_limit": limits.rate_limit, "operating_budget": limits.budget}
    pace.update(options)
    url = (args.webhook or "").strip()
    try:
        if url:
            return DocgenClient(WebhookAuth(url), **pace)
        credentials = read_env()
        if credentials.webhook_url is not None:
            return DocgenClient(WebhookAuth(credentials.webhook_url), **pace)
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
        **pace,
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


def _is_redis(journal: str | None) -> bool:
    return journal is not None and journal.startswith(("redis://", "rediss://", "unix://"))


def _journal(args: argparse.Namespace) -> str | Journal | None:
    """``--journal``: an SQLite file's path, or a :class:`RedisJournal` for a ``redis://`` URL
    (the journal many processes and hosts share; its run is ``--run-id``)."""
    path: str | None = args.journal
    if not _is_redis(path):
        return path
    try:
        from bitrix_docgen_async.redis_journal import RedisJournal
    except ImportError:
        raise UsageError(
            "a redis:// journal needs the [redis] extra (pip install 'bitrix_docgen_async[redis]')",
            prog=args.prog,
        ) from None
    run_id = args.run_id or f"template-{args.template}-type-{args.entity_type}"
    return RedisJournal(args.journal, run_id)


def _journal_name(args: argparse.Namespace) -> str:
    """The journal as messages may show it (a Redis URL without its password)."""
    if _is_redis(args.journal):
        from bitrix_docgen_async.redis.keys import safe_url  # only with the [redis] extra

        return f"{safe_url(args.journal)} (run {args.run_id or 'default'})"
    return str(args.journal)


def _check_journal(args: argparse.Namespace) -> None:
    """Fail early when the journal belongs to another run or is not a journal at all."""
    if args.journal is None or _is_redis(args.journal):
        return  # a Redis journal checks its binding when the run opens it
    try:
        check_journal_file(args.journal, template_id=args.template, entity_type_id=args.entity_type)
    except JournalError as exc:
        raise UsageError(f"cannot use the journal: {exc}", prog=args.prog) from None
    except OSError as exc:
        raise UsageError(f"cannot use the journal {args.journal}: {exc}", prog=args.prog) from None


def _writable_folder(args: argparse.Namespace) -> Path | None:
    """``--out``, created if missing and proven writable (a probe file is created and removed)
    before any document exists: a run that cannot save its PDFs must not create documents.

    Raises:
        UsageError: the folder cannot be created or written to.
    """
    if args.out is None:
        return None
    folder = Path(args.out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".bitrix-docgen-probe-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"--out {folder}: cannot write there ({reason})", prog=args.prog) from None
    return folder


class PortalUnreachable(Exception):
    """The portal has not answered for ``--give-up-after`` seconds while requests failed."""


class Watchdog:
    """Gives up on a portal that does not answer (``--give-up-after``).

    The portal counts as unreachable when no HTTP response has arrived for ``give_up_after``
    seconds *and* requests failed in that time (connection errors, timeouts: the client's
    retries or failed entities grew). Waiting on the client's own limiter (a spent operating
    budget can mean minutes without a request, docs/portal.md#limits) is not a failure.

    Args:
        stats: the client's counters (``http_requests`` counts responses).
        give_up_after: seconds.
        clock, sleep: time (injected in tests).
    """

    def __init__(
        self, stats: ClientStats, give_up_after: float, *, clock: Clock, sleep: Sleep
    ) -> None:
        self._stats = stats
        self._give_up_after = give_up_after
        self._clock = clock
        #: Waits on the injected time.
        self.sleep = sleep
        self._answers = stats.http_requests
        self._last_answer = clock()
        self._retries = stats.retries
        self._failures = 0
        #: The last transport failure seen in a result (for the message).
        self.last_failure: BaseException | None = None

    @property
    def retries(self) -> int:
        """The client's retries so far."""
        return self._stats.retries

    def failed(self, error: BaseException) -> None:
        """An entity failed; a transport failure (also behind a write whose outcome it made
        unknown) is evidence that the portal is unreachable."""
        cause = error.cause if isinstance(error, OutcomeUnknownError) else error
        if isinstance(cause, TransportError) or isinstance(error.__cause__, TransportError):
            self._failures += 1
            self.last_failure = error

    def unreachable(self) -> bool:
        """True once the portal has been silent and failing for long enough."""
        now = self._clock()
        if self._stats.http_requests != self._answers:
            self._answers = self._stats.http_requests
            self._last_answer = now
            self._retries, self._failures = self._stats.retries, 0
            return False
        failing = self._stats.retries != self._retries or self._failures > 0
        return failing and now - self._last_answer >= self._give_up_after

    async def run(self) -> float:
        """Return (the seconds of silence) once the portal is deemed unreachable."""
        period = min(1.0, self._give_up_after / 10)
        while not self.unreachable():
            await self.sleep(period)
        return self._clock() - self._last_answer


@attrs.define
class _Tally:
    """What a ``generate`` run has seen so far."""

    results: int = 0
    new: int = 0
    skipped: int = 0
    pdfs: int = 0
    saved: int = 0
    failed: int = 0
    #: (class, message) of each distinct error -> the entities it happened to.
    errors: dict[tuple[str, str], list[int]] = attrs.field(factory=dict)

    def add(self, result: GenerationResult, pdf: bool) -> None:
        self.results += 1
        if result.skipped:
            self.skipped += 1
        elif result.error is not None:
            self.failed += 1
            key = (type(result.error).__name__, _generic(result))
            self.errors.setdefault(key, []).append(result.entity_id)
        else:
            self.new += 1
            self.pdfs += int(pdf)
            self.saved += int(result.pdf_path is not None)


def _generic(result: GenerationResult) -> str:
    """The error's message with this entity's and document's ids written as ``{entity}`` and
    ``{document}``: errors that differ only there are the same error, counted once."""
    message = redact(str(result.error))
    document_id = result.document_id
    if document_id is None and result.document is not None:
        document_id = result.document.id
    for name, number in (("document", document_id), ("entity", result.entity_id)):
        if number is not None:
            message = re.sub(rf"(?<![\w.]){number}(?![\w.])", f"{{{name}}}", message)
    return message


def json_line(result: GenerationResult, entity_type_id: int) -> str:
    """One entity's outcome as a JSON object (no secrets: error messages are redacted)."""
    document = result.document
    error = result.error
    return json.dumps(
        {
            "entity_type_id": entity_type_id,
            "entity_id": result.entity_id,
            "ok": error is None,
            "skipped": result.skipped,
            "document_id": result.document_id
            if result.document_id is not None
            else (document.id if document is not None else None),
            "number": document.number if document is not None else None,
            "pdf_path": str(result.pdf_path) if result.pdf_path is not None else None,
            "error": None
            if error is None
            else {"class": type(error).__name__, "message": redact(str(error))},
        },
        ensure_ascii=False,
    )


def _entities(ids: list[int]) -> str:
    shown = ", ".join(map(str, ids[:_SHOWN_IDS]))
    return shown + (f", ... ({len(ids) - _SHOWN_IDS} more)" if len(ids) > _SHOWN_IDS else "")


def _bound_line(args: argparse.Namespace, limits: Limits, total: int, wait_pdf: bool) -> str:
    """The lower bound of the run under the limits, as ``demo`` shows it (estimated requests:
    adds and PDF looks batched 50 per request, one download per PDF)."""
    batches = -(-total // 50)
    requests = batches * (2 if wait_pdf else 1) + (total if args.out is not None else 0)
    bound = lower_bound(limits, requests, total)
    if not wait_pdf:
        bound = attrs.evolve(bound, conversion=0.0)
    return (
        f"{args.prog}: {total} entities; {limits.describe()}\n"
        f"  lower bound {format_duration(bound.total)} (requests "
        f"{format_duration(bound.requests)}, add budget {format_duration(bound.budget)} if "
        f"document.add takes {limits.add_cost:g} s, conversion "
        f"{format_duration(bound.conversion)}); ETA at least {format_duration(bound.total)}"
    )


async def generate(args: argparse.Namespace) -> int:
    """``generate``: one document per entity.

    Returns:
        0 all done, 1 some entity failed, 3 the portal unreachable for ``--give-up-after``.

    Raises:
        UsageError: exit 2 -- no webhook, a wrong template or journal, an unwritable ``--out``
            (checked before any document is created).
    """
    make_console(stderr=True)  # rich is needed: exit 2 before anything else if it is missing
    _check_journal(args)
    _writable_folder(args)
    limits = limits_of(args)
    schedule = limits.client_options()["pdf_schedule"]
    if args.pdf_first_check is not None:
        schedule = attrs.evolve(schedule, min_conversion=args.pdf_first_check)
    clock: Clock = getattr(args, "clock", time.monotonic)
    sleep: Sleep = getattr(args, "sleep", asyncio.sleep)
    async with webhook_client(args, pdf_schedule=schedule) as client:
        watchdog = Watchdog(client.stats, args.give_up_after, clock=clock, sleep=sleep)
        watch = asyncio.get_running_loop().create_task(watchdog.run())
        try:
            return await _generate(args, client, limits, watchdog, watch)
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)


async def _generate(
    args: argparse.Namespace,
    client: DocgenClient,
    limits: Limits,
    watchdog: Watchdog,
    watch: asyncio.Task[float],
) -> int:
    """``generate`` on an open client, watched by ``watchdog`` (its task: ``watch``)."""
    tally = _Tally()
    out, err = make_console(), make_console(stderr=True)
    report = err if args.json else out
    total = len(args.ids)
    download_dir = Path(args.out) if args.out is not None else None
    wait_pdf = bool(args.wait_pdf or download_dir is not None)
    steps = ["added"] + ["converted"] * wait_pdf + ["downloaded"] * (download_dir is not None)
    try:
        await _wait_first(watch, _check_template_while_reachable(args, client, watchdog))
    except PortalUnreachable:
        _say_unreachable(err, args, watchdog, tally, total)
        return EXIT_UNREACHABLE
    err.print(_bound_line(args, limits, total, wait_pdf), markup=False, soft_wrap=True)
    status = partial(client_status, client.stats)
    progress: LiveProgress | PlainProgress = (
        LiveProgress(err, total, steps, status)
        if err.is_terminal
        else PlainProgress(err, total, status, every=args.progress_every)
    )

    async def run() -> None:
        async with closing(
            client.documents.generate_many(
                template_id=args.template,
                entity_type_id=args.entity_type,
                entity_ids=args.ids,
                values=args.values,
                wait_pdf=wait_pdf,
                download_dir=download_dir,
                journal=_journal(args),
                on_progress=progress.on_progress,
                pdf_timeout=args.pdf_timeout,
                check_values=args.check_values,
            )
        ) as stream:
            async for result in stream:
                tally.add(result, wait_pdf)
                if result.error is not None:
                    watchdog.failed(result.error)
                if args.json:
                    print(json_line(result, args.entity_type), flush=True)
                if isinstance(progress, PlainProgress):
                    progress.update(tally.results, tally.failed)

    started = time.perf_counter()
    try:
        async with progress:
            await _wait_first(watch, run())
    except UnknownFieldsError as exc:
        # Checked against template.getfields before any add: nothing was generated.
        raise UsageError(f"{exc} (--no-check-values sends them anyway)", prog=args.prog) from None
    except JournalError as exc:
        # Bound to another portal, template or entity type, or in use: checked before any add.
        raise UsageError(f"cannot use the journal: {exc}", prog=args.prog) from None
    except PortalUnreachable:
        _say_unreachable(err, args, watchdog, tally, total)
        gave_up = True
    except asyncio.CancelledError:
        err.print(f"interrupted: {_resume_hint(args)}", markup=False, soft_wrap=True)
        raise
    else:
        gave_up = False
    wall = time.perf_counter() - started
    stats = client.stats
    rows: list[tuple[str, object]] = [
        ("entities", f"{tally.results} of {total}" if tally.results < total else total),
        ("done in this run", tally.new),
        ("done by an earlier run (journal)", tally.skipped),
    ]
    if wait_pdf:
        rows.append(("PDFs ready", tally.pdfs))
    if download_dir is not None:
        rows.append(("PDFs saved", f"{tally.saved} in {download_dir}/"))
    rows += [
        ("failed", tally.failed),
        ("HTTP requests", stats.http_requests),
        ("retries", stats.retries),
        ("wall time", f"{wall:.1f} s"),
    ]
    parts = lower_bound(limits, stats.http_requests, tally.new)
    bound = parts.total if wait_pdf else max(parts.requests, parts.budget)
    if bound > 0:  # as demo shows it: how close the run came to what the limits allow
        rows.append(("limits' lower bound", f"{bound:.1f} s (wall / bound {wall / bound:.2f})"))
    report.print(make_table("Summary", ("", ""), rows, header=False))
    _print_errors(report, tally)
    if gave_up:
        return EXIT_UNREACHABLE
    return EXIT_FAILED if tally.failed else EXIT_OK


def _print_errors(console: Console, tally: _Tally) -> None:
    """Each distinct error once, with how many entities it hit (never N identical lines)."""
    if not tally.errors:
        return
    ranked = sorted(tally.errors.items(), key=lambda item: -len(item[1]))
    shown = ranked[:_KEPT_FAILURES]
    rows = [(len(ids), f"{name}: {message}", _entities(ids)) for (name, message), ids in shown]
    title = f"Errors ({tally.failed} entities, {len(ranked)} distinct"
    title += f", first {len(shown)} shown)" if len(shown) < len(ranked) else ")"
    console.print(make_table(title, ("count", "error", "entities"), rows))


def _resume_hint(args: argparse.Namespace) -> str:
    if args.journal is not None:
        return f"the journal {_journal_name(args)} is consistent: run the same command to resume"
    return "documents added so far stay on the portal; --journal makes runs resumable"


def _say_unreachable(
    err: Console, args: argparse.Namespace, watchdog: Watchdog, tally: _Tally, total: int
) -> None:
    cause = watchdog.last_failure
    why = f" ({watchdog.retries} retries"
    why += f"; last error {_problem(cause)})" if cause is not None else ")"
    err.print(
        f"{args.prog}: error: the portal has not answered for {args.give_up_after:g} s while "
        f"requests failed{why}; giving up with {total - tally.results} of {total} entities "
        f"not done (exit 3); {_resume_hint(args)}",
        markup=False,
        soft_wrap=True,
    )


async def _wait_first(watch: asyncio.Task[float], work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` unless the watchdog fires first.

    Raises:
        PortalUnreachable: the watchdog fired first (``work`` has been cancelled and unwound).
    """
    task = asyncio.get_running_loop().create_task(work)
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this command is cancelled (Ctrl-C, SIGTERM): unwind the work
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        raise PortalUnreachable
    task.result()  # the work's own error, if any


async def _check_template_while_reachable(
    args: argparse.Namespace, client: DocgenClient, watchdog: Watchdog
) -> None:
    """:func:`_check_template`, retried after connection failures (the watchdog decides
    when the portal counts as unreachable)."""
    while True:
        try:
            await _check_template(args, client)
        except TransportError as exc:
            watchdog.failed(exc)
            await watchdog.sleep(_RECHECK)
            continue
        return


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
