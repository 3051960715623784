"""``docs/portal.md``: every section the code, the README and the corpus point to exists."""

from __future__ import annotations

import re

from tests.corpus import REPOSITORY

PORTAL = REPOSITORY / "docs" / "portal.md"
REFERENCE = re.compile(r"portal\.md((?:#[a-z0-9-]+)(?:,\s*#[a-z0-9-]+)*)")


def anchors() -> set[str]:
    """The anchors GitHub makes of the page's headings."""
    found = set()
    for line in PORTAL.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^a-z0-9 -]", "", title).replace(" ", "-"))
    return found


def references() -> dict[str, set[str]]:
    """file -> the anchors it names in ``docs/portal.md``."""
    sources = [
        *sorted((REPOSITORY / "bitrix_docgen_async").rglob("*.py")),
        *sorted((REPOSITORY / "benchmarks").glob("*.py")),
        REPOSITORY / "README.md",
        PORTAL,
        REPOSITORY / "tests" / "fixtures" / "README.md",
    ]
    named: dict[str, set[str]] = {}
    for path in sources:
        text = path.read_text(encoding="utf-8")
        found = {a for m in REFERENCE.finditer(text) for a in re.findall(r"#([a-z0-9-]+)", m[1])}
        found |= set(re.findall(r"\]\(#([a-z0-9-]+)\)", text)) if path == PORTAL else set()
        if found:
            named[str(path.relative_to(REPOSITORY))] = found
    return named


def test_every_referenced_section_exists() -> None:
    known = anchors()
    assert {"limits", "batch", "errors", "oauth", "events", "pdf-conversion"} <= known
    missing = {f: sorted(a - known) for f, a in references().items() if a - known}
    assert missing == {}


def test_the_package_points_to_the_page_not_to_a_file_users_lack() -> None:
    named = references()
    assert "README.md" in named
    assert sum(f.startswith("bitrix_docgen_async") for f in named) >= 20
    stale = [
        str(path.relative_to(REPOSITORY))
        for path in [
            *(REPOSITORY / "bitrix_docgen_async").rglob("*.py"),
            REPOSITORY / "README.md",
        ]
        if "protocol.md" in path.read_text(encoding="utf-8")
    ]
    assert stale == []


def test_every_rule_names_a_source() -> None:
    text = PORTAL.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    unsourced = [s.splitlines()[0] for s in sections if "https://" not in s]
    assert unsourced == ["Where the sources disagree"]
