"""Cross-check: the project's corpus has the keys, JSON types and quirks of the docs' examples.

``tests/fixtures/`` was written for this project from the documented shapes; this module holds
it against the official examples (``../shared/fixtures/docs/``) whenever they are beside the
repository: same keys, same JSON type wherever both sides have a value (a string id stays a
string, ``"Y"`` stays a string, ``[]`` stays a list), same wrapper per method. Skipped, with the
reason printed, where that folder is absent (a plain clone).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.corpus import DOCGEN, SHARED, SHARED_MISSING, corpus_files, load, manifest

if SHARED_MISSING:
    pytest.skip(SHARED_MISSING, allow_module_level=True)

DOCS = SHARED / "docs"
DOCS_DOCGEN = DOCS / "crm.documentgenerator"

#: Dicts whose keys are data (ids, field codes, value names), not a fixed shape.
DATA_KEYED = {
    "values",
    "templates",
    "documentFields",
    "templateFields",
    "users",
    "FIELDS",
    # batch sections are keyed by command
    "result_error",
    "result_total",
    "result_next",
    "result_time",
}
#: Keys the corpus leaves out on purpose, by the corpus file they are missing from.
LEFT_OUT: dict[str, set[str]] = {
    # tokens are only sent when a user caused the event; the docs' example had one
    "events/ONCRMDOCUMENTGENERATORDOCUMENTADD.form": {"auth.refresh_token"},
    "events/ONCRMDOCUMENTGENERATORDOCUMENTUPDATE.form": {"auth.refresh_token"},
    "events/ONCRMDOCUMENTGENERATORDOCUMENTDELETE.form": {
        "auth.refresh_token",
        "auth.access_token",
        "auth.expires_in",
        "auth.scope",
        "auth.status",
    },
}


def kind(value: Any, form: bool = False) -> str:
    """The JSON type, with ints and floats both "number" (PHP prints 0 for 0.0).

    In a form body (``form``) every scalar arrives as a string.
    """
    if value is None:
        return "null"
    if isinstance(value, bool | int | float | str) and form:
        return "str"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def differences(
    ours: Any, docs: Any, path: str, left_out: set[str], form: bool = False
) -> list[str]:
    """Where ``ours`` differs in shape from ``docs``; empty when they agree."""
    if ours is None or docs is None:
        return []
    if kind(ours) != kind(docs, form):
        return [f"{path or '.'}: {kind(ours)} here, {kind(docs, form)} in the docs"]
    found: list[str] = []
    name = path.rpartition(".")[2]
    if isinstance(ours, dict) and name in DATA_KEYED:
        # Keys are data (ids, codes, command keys): every key of each of our entries must be
        # one the docs' entries use, with the same type; entries vary in which keys they have.
        samples = [v for v in docs.values() if isinstance(v, dict)]
        for key, value in ours.items():
            if key in docs:
                found += differences(value, docs[key], f"{path}.{key}", left_out, form)
            elif isinstance(value, dict) and samples:
                for inner, item in value.items():
                    where = f"{path}.*.{inner}"
                    having = [sample[inner] for sample in samples if inner in sample]
                    if not having:
                        found.append(f"{where}: not in the docs")
                    elif all(differences(item, h, where, left_out, form) for h in having):
                        found += differences(item, having[0], where, left_out, form)
        return found
    if isinstance(ours, dict):
        for key in sorted(set(ours) | set(docs)):
            where = f"{path}.{key}" if path else key
            if key not in ours:
                if where not in left_out:
                    found.append(f"{where}: missing here")
            elif key not in docs:
                found.append(f"{where}: not in the docs")
            else:
                found += differences(ours[key], docs[key], where, left_out, form)
        return found
    if isinstance(ours, list) and ours and docs:
        for index, value in enumerate(ours):
            sample = docs[index] if len(docs) == len(ours) else docs[-1]
            found += differences(value, sample, f"{path}[{index}]", left_out, form)
    return found


def docs_example(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


#: Our corpus file -> the docs' example it mirrors.
PAIRS: dict[str, Path] = {
    **{
        name: DOCS_DOCGEN / name.removeprefix("docgen/")
        for name in corpus_files()
        if name.startswith(DOCGEN) and ".empty." not in name
    },
    **{
        f"events/ONCRMDOCUMENTGENERATORDOCUMENT{k.upper()}.form": DOCS_DOCGEN
        / f"onCrmDocumentGeneratorDocument{k}.event.json"
        for k in ("Add", "Update", "Delete")
    },
    "events/event.bind.response.json": DOCS / "events" / "event.bind.response.json",
    "events/event.bind.error.json": DOCS / "events" / "event.bind.error.json",
    "events/event.unbind.response.json": DOCS / "events" / "event.unbind.response.json",
    "events/event.unbind.error.json": DOCS / "events" / "event.unbind.error.json",
    "events/event.get.response.json": DOCS / "events" / "event.get.response.json",
    "events/other/ONCRMDEALADD.form": DOCS / "events" / "event-to-application.ONCRMDEALADD.json",
    "events/other/ONAPPUNINSTALL.form": DOCS / "events" / "event.ONAPPUNINSTALL.json",
    "oauth/token.authorization_code.json": DOCS
    / "oauth"
    / "token-authorization_code.response.json",
    "oauth/token.refresh_token.json": DOCS / "oauth" / "token-refresh_token.response.json",
    "oauth/token.invalid_client.json": DOCS / "errors/from-b24pysdk/oauth-invalid_client.json",
    "oauth/token.wrong_client.json": DOCS / "errors/from-b24pysdk/oauth-wrong_client.json",
    "limits/QUERY_LIMIT_EXCEEDED.json": DOCS / "errors/from-b24pysdk/QUERY_LIMIT_EXCEEDED.json",
    "limits/OPERATION_TIME_LIMIT.json": DOCS / "errors/from-b24pysdk/OPERATION_TIME_LIMIT.json",
    "limits/OVERLOAD_LIMIT.json": DOCS / "errors/from-b24pysdk/OVERLOAD_LIMIT.json",
    "batch/batch.halt1.json": DOCS / "batch" / "batch.error-halt1.json",
}


def test_every_docgen_method_is_paired_both_ways() -> None:
    ours = {n.removeprefix("docgen/") for n in PAIRS if n.startswith("docgen/")}
    docs = {p.name for p in DOCS_DOCGEN.glob("crm.documentgenerator.*.json")}
    assert ours == docs
    assert all(path.is_file() for path in PAIRS.values())
    assert set(PAIRS) <= set(manifest())


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_same_keys_and_types_as_the_docs(name: str) -> None:
    left_out = LEFT_OUT.get(name, set())
    form = name.endswith(".form")
    problems = differences(load(name), docs_example(PAIRS[name]), "", left_out, form)
    assert not problems, f"{name} vs {PAIRS[name].name}: {problems}"


def test_the_comparison_notices_a_changed_type() -> None:
    ours = load(f"{DOCGEN}document.get.response.json")
    docs = docs_example(DOCS_DOCGEN / "crm.documentgenerator.document.get.response.json")
    ours["result"]["document"]["id"] = 214  # get sends a string id
    del ours["result"]["document"]["pullTag"]
    assert differences(ours, docs, "", set()) == [
        "result.document.id: number here, str in the docs",
        "result.document.pullTag: missing here",
    ]


@pytest.mark.parametrize(
    "name",
    ["batch/batch.response.json", "batch/batch.halt0.json", "batch/batch.numeric-keys.json"],
)
def test_batch_sections_as_documented(name: str) -> None:
    docs = docs_example(DOCS / "batch" / "batch.response.json")["result"]
    ours = load(name)["result"]
    assert list(ours) == list(docs)  # result, result_error, result_total, result_next, result_time
    for section, value in ours.items():
        # an empty section is [] (PHP's empty array), never {}
        assert value != {}, section
        assert isinstance(value, list | dict)
