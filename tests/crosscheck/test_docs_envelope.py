"""Cross-check: the official docs' and SDKs' examples through core.envelope.

The same checks as ``tests/core/test_envelope.py`` (which runs on the project's corpus), run on
the docs' own examples and the PHP SDK's recorded answers (``../shared/fixtures/``). Skipped,
with the reason printed, where that folder is absent (a plain clone).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bitrix_docgen_async.core.envelope import (
    BatchReply,
    Envelope,
    TimeInfo,
    parse_response,
    split_batch,
)
from bitrix_docgen_async.errors import (
    AccessDeniedError,
    OperationTimeLimitError,
    ResponseError,
)
from tests.corpus import SHARED, SHARED_MISSING

if SHARED_MISSING:
    pytest.skip(SHARED_MISSING, allow_module_level=True)

FIXTURES = SHARED
DOCS = FIXTURES / "docs"
PHPSDK = FIXTURES / "sdks" / "b24phpsdk"

CRM_RESPONSES = sorted((DOCS / "crm.documentgenerator").glob("*.response.json"))
TUTORIAL_RESPONSES = sorted(
    (DOCS / "crm.documentgenerator" / "tutorial-how-to-generate-documents").glob("*.json")
)
NON_CRM_RESPONSES = sorted((DOCS / "documentgenerator").glob("*.response.json"))


def _parse_fixture(path: Path) -> Envelope:
    return parse_response(200, path.read_bytes(), method=path.name.split(".response")[0])


# ---------------------------------------------------------------- docs' success examples


def test_fixture_sets_are_not_empty() -> None:
    assert len(CRM_RESPONSES) == 19
    assert len(TUTORIAL_RESPONSES) == 3
    assert NON_CRM_RESPONSES


@pytest.mark.parametrize("path", CRM_RESPONSES + NON_CRM_RESPONSES, ids=lambda p: p.name)
def test_docgen_response_fixture_parses_with_time(path: Path) -> None:
    raw = json.loads(path.read_bytes())
    envelope = _parse_fixture(path)
    assert isinstance(envelope, Envelope)
    assert envelope.result == raw["result"]
    assert isinstance(envelope.time, TimeInfo)
    assert envelope.time.start is not None
    assert envelope.time.finish is not None
    assert envelope.time.date_start is not None
    assert envelope.total == raw.get("total")
    assert envelope.next is None


@pytest.mark.parametrize("path", TUTORIAL_RESPONSES, ids=lambda p: p.name)
def test_tutorial_fixture_parses_without_time(path: Path) -> None:
    envelope = _parse_fixture(path)
    assert envelope.time is None
    assert envelope.total is None
    assert isinstance(envelope.result, dict)


def test_document_list_fixture_details() -> None:
    envelope = _parse_fixture(
        DOCS / "crm.documentgenerator" / "crm.documentgenerator.document.list.response.json"
    )
    assert envelope.total == 4
    assert envelope.next is None
    assert [doc["id"] for doc in envelope.result["documents"]] == ["61", "59"]
    assert envelope.time == TimeInfo(
        start=1774009414.0,
        finish=1774009414.09833,
        duration=0.09833002090454102,
        processing=0.0,
        operating=0.0,
        operating_reset_at=1774010014.0,
        date_start="2026-03-20T15:23:34+03:00",
        date_finish="2026-03-20T15:23:34+03:00",
    )


def test_user_current_fixture_has_no_operating_reset_at() -> None:
    envelope = _parse_fixture(DOCS / "time" / "user.current.response-shortened.json")
    assert envelope.result["NAME"] == "Klaus"
    assert envelope.time is not None
    assert envelope.time.operating == 0.0
    assert envelope.time.operating_reset_at is None


def test_scalar_result_with_operating() -> None:
    envelope = _parse_fixture(PHPSDK / "call.success.scalar-result-with-operating.json")
    assert envelope.result == 3465
    assert envelope.time is not None
    assert envelope.time.operating == pytest.approx(3.3076241016387939)
    assert envelope.time.operating_reset_at == 1705765533.0


def test_time_object_fixture() -> None:
    data = json.loads((DOCS / "time" / "time-object.data-types.json").read_bytes())
    time = TimeInfo.from_wire(data["time"])
    assert time is not None
    assert time.operating_reset_at == 1757425271.0
    assert time.date_finish == "2025-09-09T16:31:12+03:00"


def test_docs_example_with_ellipsis_is_not_json() -> None:
    # limits.md prints "..." in place of the result: not JSON, so a ResponseError.
    body = (DOCS / "time" / "time-with-operating.limits.jsonc").read_bytes()
    with pytest.raises(ResponseError) as info:
        parse_response(200, body)
    assert info.value.status == 200


# ---------------------------------------------------------------- docs' batch examples


def _batch(path: Path) -> tuple[Envelope, BatchReply]:
    envelope = parse_response(200, path.read_bytes(), method="batch")
    methods = {"get_user": "user.get", "get_department": "department.get"}
    return envelope, split_batch(envelope.result, methods)


def test_batch_response_fixture() -> None:
    envelope, reply = _batch(DOCS / "batch" / "batch.response.json")
    assert envelope.time is not None
    assert envelope.time.duration == pytest.approx(0.05011296272277832)
    assert set(reply.results) == {"get_user", "get_department"}
    assert reply.results["get_user"]["UF_DEPARTMENT"] == [1]
    assert reply.results["get_department"][0]["NAME"] == "DEMO"
    assert reply.errors == {}
    assert reply.totals == {"get_department": 1}
    assert reply.nexts == {}
    assert set(reply.times) == {"get_user", "get_department"}
    assert reply.times["get_user"].start == 1724916859.46156
    assert reply.times["get_department"].operating is None


def test_batch_response_shortened_fixture_has_missing_sections() -> None:
    _, reply = _batch(DOCS / "batch" / "batch.response-shortened.json")
    assert reply == BatchReply(
        results={"get_user": {"ID": "1", "NAME": "Klaus", "LAST_NAME": "Weber"}}
    )


def test_batch_error_halt0_fixture() -> None:
    _, reply = _batch(DOCS / "batch" / "batch.error-halt0.json")
    assert reply.results == {}
    assert set(reply.errors) == {"get_user", "get_department"}
    for key, method in (("get_user", "user.get"), ("get_department", "department.get")):
        error = reply.errors[key]
        assert type(error) is AccessDeniedError
        assert (error.code, error.description, error.status, error.method) == (
            "insufficient_scope",
            "",
            None,
            method,
        )
    assert (reply.totals, reply.nexts, reply.times) == ({}, {}, {})


def test_batch_error_halt1_fixture() -> None:
    _, reply = _batch(DOCS / "batch" / "batch.error-halt1.json")
    assert set(reply.errors) == {"get_user"}
    assert type(reply.errors["get_user"]) is AccessDeniedError
    # get_department never ran: in no section at all.
    assert "get_department" not in reply.results
    assert reply.times == {}


@pytest.mark.parametrize(
    ("name", "key", "reset_at"),
    [
        (
            "batch.result_error.OPERATION_TIME_LIMIT.2023-04-15T141757Z.json",
            "592dcd1e-cd14-410f-bab5-76b3ede717dd",
            1681568878.0,
        ),
        (
            "batch.result_error.OPERATION_TIME_LIMIT.2023-04-15T143747Z.json",
            "f26b4ebc-3a82-4fe6-8d26-595d6eaf029b",
            1681570067.0,
        ),
    ],
)
def test_php_sdk_operation_time_limit_batches(name: str, key: str, reset_at: float) -> None:
    envelope = parse_response(200, (PHPSDK / name).read_bytes(), method="batch")
    assert envelope.time is not None
    assert envelope.time.operating == 0.0
    assert envelope.time.operating_reset_at == reset_at
    reply = split_batch(envelope.result, {key: "crm.contact.update"})
    assert reply.results == {}
    assert list(reply.errors) == [key]
    error = reply.errors[key]
    assert type(error) is OperationTimeLimitError
    assert error.retryable
    assert error.status is None
    assert error.method == "crm.contact.update"
    assert error.description == "Method is blocked due to operation time limit."
    assert (reply.totals, reply.nexts, reply.times) == ({}, {}, {})
