"""The bulk run's journal: what was intended and what was done, per entity.

``document.add`` is not idempotent, so a run records its intent *before* each add and the
document id *after* it. A run killed between the two leaves an entity in state ``adding``: the
next run looks the document up (``document.list`` by template and entity) before adding again,
so a crash never produces a duplicate.

:class:`Journal` is the protocol a run talks to (claim / record / lookup), so that a journal
shared by many processes (Redis, with per-entity claims) can stand in for the local one.
:class:`SqliteJournal` is the local implementation: one file, one run at a time. It holds an
exclusive ``flock`` on ``<file>.lock`` while open, which the kernel releases when the process
ends however it ends (a SIGKILLed run leaves no stale lock); a second run on the same file fails
at once with :class:`JournalError`. WAL mode with ``synchronous=NORMAL`` survives a killed process
(only an OS crash could lose the last commits).

A journal is bound to the run it was made for: the portal (origin), the caller's identity on it
(webhook user or OAuth application, stored as a hash: never a webhook code or a token), the
template and the entity type. Opening it for anything else raises :class:`JournalError`, because
its records (done, document ids) mean nothing elsewhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import time
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

import attrs

from bitrix_docgen_async.errors import JournalError

__all__ = [
    "Claim",
    "Journal",
    "JournalEntry",
    "RunBinding",
    "SqliteJournal",
    "check_journal_file",
]

_SCHEMA_VERSION = "2"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
    entity_id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,              -- adding | added | done
    intended_at REAL,                 -- wall-clock time of the first add attempt
    document_id INTEGER,
    pdf_path TEXT,
    error TEXT
);
"""


@attrs.frozen
class RunBinding:
    """What a journal belongs to.

    Attributes:
        portal: the portal's origin, e.g. ``https://example.bitrix24.com``.
        identity: who calls it (``webhook user 1``, ``app local.abc``); stored hashed.
        template_id: the template every document is made from.
        entity_type_id: the CRM entity type of every entity.
    """

    portal: str
    identity: str
    template_id: int
    entity_type_id: int

    @property
    def identity_hash(self) -> str:
        """A digest of portal and identity (the journal stores this, not the identity)."""
        text = f"{self.portal.lower().rstrip('/')}|{self.identity}"
        return hashlib.sha256(text.encode()).hexdigest()


@attrs.frozen
class JournalEntry:
    """One entity's record.

    Attributes:
        entity_id: the CRM item.
        state: ``adding`` (intent recorded, outcome unknown), ``added`` or ``done``.
        intended_at: wall-clock time of the first add attempt.
        document_id: its document, once known.
        pdf_path: where its PDF was saved (``done`` only).
    """

    entity_id: int
    state: str
    intended_at: float | None
    document_id: int | None
    pdf_path: str | None


@attrs.frozen
class Claim:
    """The answer to :meth:`Journal.claim`.

    Attributes:
        entry: what is recorded for the entity so far (None: nothing).
        held_elsewhere: another worker of a shared journal is on it now; leave it alone.
    """

    entry: JournalEntry | None
    held_elsewhere: bool = False


@runtime_checkable
class Journal(Protocol):
    """What a bulk run needs from its journal.

    A run calls :meth:`open` once, then for each entity :meth:`claim` before any call to the
    portal, :meth:`intend` before each add, :meth:`record_added` once the document is known,
    :meth:`record_done` or :meth:`record_failed` at the end, and :meth:`release` when it stops
    working on the entity; :meth:`close` at the end of the run. Every method raises
    :class:`JournalError` when the journal cannot do its part.
    """

    async def open(self, binding: RunBinding) -> None:
        """Take the journal for this run; raise :class:`JournalError` if it is not its own."""

    async def claim(self, entity_id: int) -> Claim:
        """Start working on ``entity_id``: what is recorded, or that someone else holds it."""

    async def lookup(self, entity_id: int) -> JournalEntry | None:
        """The entity's record, if any."""

    async def intend(self, entity_id: int) -> float:
        """Record the intent to add (before the request); return the first intent's time."""

    async def record_added(self, entity_id: int, document_id: int) -> None:
        """Record the document that exists for the entity."""

    async def record_done(self, entity_id: int, document_id: int, pdf_path: str | None) -> None:
        """Record that every step finished."""

    async def record_failed(self, entity_id: int, error: str) -> None:
        """Note the last error (the state stays, so a re-run carries on from there)."""

    async def release(self, entity_id: int) -> None:
        """Stop working on ``entity_id`` (a shared journal lets others claim it)."""

    async def close(self) -> None:
        """Give the journal up (idempotent)."""


def _lock(path: Path) -> IO[str]:
    """An exclusive, non-blocking ``flock`` on ``path``; the kernel drops it with the process."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        raise JournalError("the SQLite journal needs POSIX file locks (fcntl)") from None
    handle = path.open("a+", encoding="ascii")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        who = f" (process {holder})" if holder.isdigit() else ""
        raise JournalError(
            f"journal {path.with_suffix('').name}: in use by another run{who}; "
            "one run at a time per journal file"
        ) from None
    except OSError:
        handle.close()
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class SqliteJournal:
    """A journal file for one run; reopen it (same portal, template, entity type) to resume.

    Args:
        path: the SQLite file (created if missing); ``<path>.lock`` beside it is the run's lock.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._lock: IO[str] | None = None

    def __repr__(self) -> str:
        return f"SqliteJournal({self.path.name!r})"

    def _error(self, doing: str, exc: BaseException) -> JournalError:
        return JournalError(f"journal {self.path.name}: cannot {doing}: {exc}")

    def open_sync(self, binding: RunBinding | None) -> None:
        """:meth:`open` without awaiting; ``binding=None`` checks nothing but the format."""
        if self._db is not None:
            raise JournalError(f"journal {self.path.name}: already open")
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self._lock = _lock(lock_path)
        except OSError as exc:
            raise self._error("lock it", exc) from None
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=0.5)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._bind(binding)
        except JournalError:
            self._close()
            raise
        except (sqlite3.Error, OSError) as exc:
            self._close()
            raise self._error("read it (damaged, or not a journal?)", exc) from None

    def _bind(self, binding: RunBinding | None) -> None:
        assert self._db is not None
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if binding is None:
            if meta and meta.get("schema") != _SCHEMA_VERSION:
                raise JournalError(f"journal {self.path.name}: not a journal of this version")
            return
        wanted = {
            "schema": _SCHEMA_VERSION,
            "portal": binding.portal.lower().rstrip("/"),
            "identity": binding.identity_hash,
            "template_id": str(binding.template_id),
            "entity_type_id": str(binding.entity_type_id),
        }
        if not meta:
            if self._db.execute("SELECT 1 FROM entities LIMIT 1").fetchone() is not None:
                raise JournalError(f"journal {self.path.name}: has records but no binding")
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", wanted.items())
            return
        names = {
            "schema": "journal format",
            "portal": "portal",
            "identity": "webhook user or application",
            "template_id": "template",
            "entity_type_id": "entity type",
        }
        for key, value in wanted.items():
            if meta.get(key) != value:
                shown = "" if key == "identity" else f": {meta.get(key)} here, {value} now"
                raise JournalError(
                    f"journal {self.path.name} belongs to another {names[key]}{shown}; "
                    "use a new journal file for this run"
                )

    def _close(self) -> None:
        db, self._db = self._db, None
        lock, self._lock = self._lock, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()
        if lock is not None:
            lock.close()  # drops the flock

    def _run(self, doing: str, sql: str, args: tuple[object, ...]) -> sqlite3.Cursor:
        if self._db is None:
            raise JournalError(f"journal {self.path.name}: not open")
        try:
            return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise self._error(doing, exc) from None

    def get(self, entity_id: int) -> JournalEntry | None:
        """The entity's record, if any (synchronously)."""
        row = self._run(
            "read a record",
            "SELECT entity_id, state, intended_at, document_id, pdf_path FROM entities "
            "WHERE entity_id = ?",
            (entity_id,),
        ).fetchone()
        return JournalEntry(*row) if row else None

    def counts(self) -> dict[str, int]:
        """How many entities are in each state."""
        rows = self._run("count", "SELECT state, COUNT(*) FROM entities GROUP BY state", ())
        return {state: count for state, count in rows}

    # -- the Journal protocol ---------------------------------------------------------------

    async def open(self, binding: RunBinding) -> None:
        self.open_sync(binding)

    async def claim(self, entity_id: int) -> Claim:
        # The file lock makes this run the only one: every entity is ours.
        return Claim(self.get(entity_id))

    async def lookup(self, entity_id: int) -> JournalEntry | None:
        return self.get(entity_id)

    async def intend(self, entity_id: int) -> float:
        now = time.time()
        self._run(
            "record an intent",
            "INSERT INTO entities (entity_id, state, intended_at) VALUES (?, 'adding', ?) "
            "ON CONFLICT(entity_id) DO UPDATE SET state = 'adding', "
            "intended_at = COALESCE(intended_at, excluded.intended_at)",
            (entity_id, now),
        )
        entry = self.get(entity_id)
        return entry.intended_at if entry is not None and entry.intended_at else now

    async def record_added(self, entity_id: int, document_id: int) -> None:
        self._run(
            "record a document",
            "INSERT INTO entities (entity_id, state, document_id) VALUES (?, 'added', ?) "
            "ON CONFLICT(entity_id) DO UPDATE SET state = 'added', document_id = ?",
            (entity_id, document_id, document_id),
        )

    async def record_done(self, entity_id: int, document_id: int, pdf_path: str | None) -> None:
        self._run(
            "record a finished entity",
            "UPDATE entities SET state = 'done', document_id = ?, pdf_path = ?, error = NULL "
            "WHERE entity_id = ?",
            (document_id, pdf_path, entity_id),
        )

    async def record_failed(self, entity_id: int, error: str) -> None:
        self._run(
            "record an error",
            "UPDATE entities SET error = ? WHERE entity_id = ?",
            (error, entity_id),
        )

    async def release(self, entity_id: int) -> None:
        return None  # nothing to give back: the whole file is this run's

    async def close(self) -> None:
        self._close()


def check_journal_file(
    path: str | os.PathLike[str], *, template_id: int, entity_type_id: int
) -> None:
    """Fail early (before a run starts) if ``path`` cannot be this run's journal.

    Checks that the file is free, readable as a journal, and made for this template and entity
    type; the portal is checked when the run opens it.

    Raises:
        JournalError: with the reason.
    """
    journal = SqliteJournal(path)
    journal.open_sync(None)
    try:
        meta = dict(journal._run("read the binding", "SELECT key, value FROM meta", ()).fetchall())
    finally:
        journal._close()
    for key, value in (("template_id", template_id), ("entity_type_id", entity_type_id)):
        if key in meta and meta[key] != str(value):
            what = key.replace("_id", "").replace("_", " ")
            raise JournalError(
                f"journal {Path(path).name} belongs to another {what}: {meta[key]} there, "
                f"{value} now; use a new journal file for this run"
            )
