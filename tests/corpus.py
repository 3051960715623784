"""The project's wire corpus (``tests/fixtures/``) and, when present, the docs' own examples.

Every path here is found from this file, never written out: a clone of the repository tests
itself from ``tests/fixtures/``. The official examples that the project's workspace keeps beside
the repository (``../shared/fixtures/``) are an extra: the cross-check modules skip themselves,
with :data:`SHARED_MISSING` as the reason printed by ``pytest -rs``, when they are absent.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from bitrix_docgen_async.core.encoding import parse_str

#: ``tests/``.
TESTS = Path(__file__).resolve().parent
#: The corpus: one file per wire example, indexed by ``manifest.json``.
FIXTURES = TESTS / "fixtures"
#: The repository's root.
REPOSITORY = TESTS.parent
#: The workspace's shared folder beside the repository; a plain clone has none.
SHARED = REPOSITORY.parent / "shared" / "fixtures"

DOCGEN = "docgen/crm.documentgenerator."


@functools.cache
def manifest() -> dict[str, dict[str, Any]]:
    """``manifest.json``: corpus file (relative to ``tests/fixtures``) -> method, status, note."""
    index: dict[str, dict[str, Any]] = json.loads(
        (FIXTURES / "manifest.json").read_text(encoding="utf-8")
    )
    return index


def corpus_files() -> list[str]:
    """Every example file actually present, relative to ``tests/fixtures``."""
    skip = {"manifest.json", "README.md"}
    return sorted(
        p.relative_to(FIXTURES).as_posix()
        for p in FIXTURES.rglob("*")
        if p.is_file() and p.name not in skip
    )


def raw(name: str) -> bytes:
    """The bytes of a corpus file, as the portal would send them."""
    return (FIXTURES / name).read_bytes()


def load(name: str) -> Any:
    """A corpus file decoded: JSON, or a PHP-style form (``.form``) as nested dicts of strings."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    if name.endswith(".form"):
        return parse_str(text)
    return json.loads(text)


def status(name: str) -> int | None:
    """The HTTP status the index gives for a corpus file (``None`` for event deliveries)."""
    value = manifest()[name]["status"]
    assert value is None or isinstance(value, int)
    return value


def method(name: str) -> str:
    """The method (or endpoint) the index gives for a corpus file."""
    value = manifest()[name]["method"]
    assert isinstance(value, str)
    return value


def docgen(name: str) -> str:
    """``"document.add.response"`` -> the corpus path of that docgen example."""
    return f"{DOCGEN}{name}.json"


#: Why the docs cross-check cannot run here, or ``""`` when it can. A cross-check module starts
#: with ``if SHARED_MISSING: pytest.skip(SHARED_MISSING, allow_module_level=True)``, so that
#: ``pytest -rs`` prints the module and this reason.
SHARED_MISSING = (
    ""
    if (SHARED / "docs").is_dir()
    else "docs cross-check: ../shared/fixtures/docs (the official examples beside the repository) "
    "is absent; the project's own corpus in tests/fixtures is tested instead"
)
