"""The bulk run's journal: what was intended and what was done, per entity, in SQLite.

``document.add`` is not idempotent, so a run records its intent *before* each add and the
document id *after* it. A run killed between the two leaves an entity in state ``adding``: the
next run looks the document up (``document.list`` by template and entity) before adding again,
so a crash never produces a duplicate. WAL mode with ``synchronous=NORMAL`` survives a killed
process (only an OS crash could lose the last commits).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import attrs

__all__ = ["Journal", "JournalEntry"]

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
class JournalEntry:
    """One entity's record."""

    entity_id: int
    state: str
    intended_at: float | None
    document_id: int | None
    pdf_path: str | None


class Journal:
    """A journal file for one (template, entity type) run; reopen it to resume.

    Raises:
        ValueError: the file belongs to a run of another template or entity type.
    """

    def __init__(self, path: str | os.PathLike[str], *, template_id: int, entity_type_id: int):
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        run = f"{template_id}:{entity_type_id}"
        row = self._db.execute("SELECT value FROM meta WHERE key = 'run'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('run', ?)", (run,))
        elif row[0] != run:
            self._db.close()
            raise ValueError(
                f"journal {self.path.name} belongs to template:entity type {row[0]}, not {run}"
            )

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def get(self, entity_id: int) -> JournalEntry | None:
        """The entity's record, if any."""
        row = self._db.execute(
            "SELECT entity_id, state, intended_at, document_id, pdf_path FROM entities "
            "WHERE entity_id = ?",
            (entity_id,),
        ).fetchone()
        return JournalEntry(*row) if row else None

    def intend(self, entity_id: int) -> float:
        """Record the intent to add (before the request); returns the first intent's time."""
        now = time.time()
        self._db.execute(
            "INSERT INTO entities (entity_id, state, intended_at) VALUES (?, 'adding', ?) "
            "ON CONFLICT(entity_id) DO UPDATE SET state = 'adding', "
            "intended_at = COALESCE(intended_at, excluded.intended_at)",
            (entity_id, now),
        )
        entry = self.get(entity_id)
        return entry.intended_at if entry and entry.intended_at else now

    def added(self, entity_id: int, document_id: int) -> None:
        """Record the document that exists for the entity."""
        self._db.execute(
            "INSERT INTO entities (entity_id, state, document_id) VALUES (?, 'added', ?) "
            "ON CONFLICT(entity_id) DO UPDATE SET state = 'added', document_id = ?",
            (entity_id, document_id, document_id),
        )

    def done(self, entity_id: int, document_id: int, pdf_path: str | None) -> None:
        """Record that every step finished."""
        self._db.execute(
            "UPDATE entities SET state = 'done', document_id = ?, pdf_path = ?, error = NULL "
            "WHERE entity_id = ?",
            (document_id, pdf_path, entity_id),
        )

    def failed(self, entity_id: int, error: str) -> None:
        """Note the last error (the state stays, so a re-run carries on from there)."""
        self._db.execute("UPDATE entities SET error = ? WHERE entity_id = ?", (error, entity_id))

    def counts(self) -> dict[str, int]:
        """How many entities are in each state."""
        rows = self._db.execute("SELECT state, COUNT(*) FROM entities GROUP BY state")
        return {state: count for state, count in rows}
