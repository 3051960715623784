"""The corpus in ``tests/fixtures`` is complete, indexed, and read from relative paths only."""

from __future__ import annotations

import json
import re

from tests.corpus import FIXTURES, TESTS, corpus_files, docgen, load, manifest

#: Every crm.documentgenerator.* method the client calls.
METHODS = [
    *(
        f"document.{m}"
        for m in (
            "add",
            "get",
            "list",
            "update",
            "delete",
            "enablepublicurl",
            "upload",
            "getfields",
        )
    ),
    *(f"template.{m}" for m in ("add", "get", "list", "update", "delete", "getfields")),
    *(f"numerator.{m}" for m in ("add", "get", "list", "update", "delete")),
]


def test_the_index_lists_exactly_the_files_present() -> None:
    assert sorted(manifest()) == corpus_files()
    assert len(corpus_files()) == 70


def test_the_readme_table_matches_the_index() -> None:
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    rows = {
        match[0]: (match[1], match[2])
        for match in re.findall(r"^\| `([^`]+)` \| `([^`]+)` \| ([^|]+?) \|", readme, re.M)
    }
    expected = {
        name: (entry["method"], "—" if entry["status"] is None else str(entry["status"]))
        for name, entry in manifest().items()
    }
    assert rows == expected


def test_every_method_has_a_success_and_an_error_example() -> None:
    for method in METHODS:
        success, error = docgen(f"{method}.response"), docgen(f"{method}.error")
        assert manifest()[success]["method"] == f"crm.documentgenerator.{method}"
        assert manifest()[success]["status"] == 200
        assert manifest()[error]["method"] == f"crm.documentgenerator.{method}"
        assert manifest()[error]["status"] == 400
        assert "result" in load(success)
        assert set(load(error)) == {"error", "error_description"}


def test_statuses_are_http_statuses_or_none_for_deliveries() -> None:
    for name, entry in manifest().items():
        if name.endswith(".form"):
            assert entry["status"] is None, name
        else:
            assert entry["status"] in (200, 400, 403, 429, 503), name


def test_json_examples_are_strict_json() -> None:
    def refuse(constant: str) -> None:
        raise ValueError(constant)

    for name in corpus_files():
        if name.endswith(".json"):
            json.loads((FIXTURES / name).read_text(encoding="utf-8"), parse_constant=refuse)


def test_no_test_reads_an_absolute_path() -> None:
    """Paths come from ``Path(__file__)``; a written-out one breaks a clone elsewhere."""
    pattern = re.compile(r"""(Path|open)\(\s*["'](/|[A-Za-z]:\\)|["']/(work|home|tmp)/""")
    offenders = [
        f"{path.relative_to(TESTS)}:{number}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "test_corpus.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
