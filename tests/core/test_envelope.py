"""Tests for core.envelope: success/error envelopes, the time block and batch splitting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitrix_docgen_async.core.envelope import (
    BatchReply,
    Envelope,
    TimeInfo,
    parse_response,
    split_batch,
)
from bitrix_docgen_async.errors import (
    AccessDeniedError,
    ApiError,
    InvalidRequestError,
    NotFoundError,
    OAuthError,
    OperationTimeLimitError,
    QueryLimitExceededError,
    ResponseError,
    TokenExpiredError,
)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
DOCS = FIXTURES / "docs"
PHPSDK = FIXTURES / "sdks" / "b24phpsdk"

CRM_RESPONSES = sorted((DOCS / "crm.documentgenerator").glob("*.response.json"))
TUTORIAL_RESPONSES = sorted(
    (DOCS / "crm.documentgenerator" / "tutorial-how-to-generate-documents").glob("*.json")
)
NON_CRM_RESPONSES = sorted((DOCS / "documentgenerator").glob("*.response.json"))


def _body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def _parse_fixture(path: Path) -> Envelope:
    return parse_response(200, path.read_bytes(), method=path.name.split(".response")[0])


# ---------------------------------------------------------------- success fixtures


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


# ---------------------------------------------------------------- parse_response: success


def test_total_and_next_as_numeric_strings() -> None:
    envelope = parse_response(200, _body({"result": [], "total": "120", "next": " 50 "}))
    assert (envelope.total, envelope.next) == (120, 50)


def test_total_and_next_as_ints_floats_and_null() -> None:
    envelope = parse_response(200, _body({"result": [], "total": 7.0, "next": 50}))
    assert (envelope.total, envelope.next) == (7, 50)
    envelope = parse_response(200, _body({"result": [], "total": None, "next": None}))
    assert (envelope.total, envelope.next) == (None, None)


@pytest.mark.parametrize("bad", ["abc", "1.5", True, [], {}, 1.5, ""])
def test_unreadable_total_or_next_is_a_response_error(bad: object) -> None:
    for key in ("total", "next"):
        with pytest.raises(ResponseError) as info:
            parse_response(200, _body({"result": [], key: bad}))
        assert info.value.status == 200


@pytest.mark.parametrize("result", [None, 0, False, "", [], {}, "text", 3465, True])
def test_any_result_value_is_accepted(result: object) -> None:
    envelope = parse_response(200, _body({"result": result}))
    assert envelope == Envelope(result=result)


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_any_2xx_status_with_result(status: int) -> None:
    assert parse_response(status, _body({"result": True})).result is True


def test_utf8_with_bom() -> None:
    body = b"\xef\xbb\xbf" + json.dumps({"result": {"name": "Übersicht"}}).encode()
    assert parse_response(200, body).result == {"name": "Übersicht"}


def test_non_ascii_utf8_body() -> None:
    body = '{"result": "Счёт №1"}'.encode()
    assert parse_response(200, body).result == "Счёт №1"


def test_envelope_is_frozen() -> None:
    envelope = Envelope(result=1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        envelope.result = 2  # type: ignore[misc]


# ---------------------------------------------------------------- parse_response: errors


def test_error_envelope_is_raised_with_status_and_method() -> None:
    body = _body({"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"})
    with pytest.raises(QueryLimitExceededError) as info:
        parse_response(503, body, method="crm.documentgenerator.document.add")
    error = info.value
    assert (error.code, error.description, error.status, error.method) == (
        "QUERY_LIMIT_EXCEEDED",
        "Too many requests",
        503,
        "crm.documentgenerator.document.add",
    )
    assert error.retryable


def test_error_envelope_with_status_200_is_raised() -> None:
    with pytest.raises(OAuthError) as info:
        parse_response(200, _body({"error": "wrong_client"}))
    assert info.value.status == 200
    assert info.value.description == ""


def test_error_wins_over_result() -> None:
    with pytest.raises(TokenExpiredError):
        parse_response(401, _body({"result": 1, "error": "expired_token"}))


def test_empty_docgen_code_and_null_description() -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_response(400, _body({"error": "", "error_description": None}))
    assert (info.value.code, info.value.description) == ("", "")


def test_numeric_error_code_is_coerced() -> None:
    body = _body({"error": 0, "error_description": "Document not found"})
    with pytest.raises(NotFoundError) as info:
        parse_response(400, body)
    assert info.value.code == "0"


def test_rest_v3_error_object() -> None:
    body = _body({"error": {"code": "ACCESS_DENIED", "message": "Access denied"}})
    with pytest.raises(AccessDeniedError) as info:
        parse_response(403, body)
    assert (info.value.code, info.value.description) == ("ACCESS_DENIED", "Access denied")


NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def test_html_502_page() -> None:
    with pytest.raises(ResponseError) as info:
        parse_response(502, NGINX_502, method="crm.documentgenerator.document.add")
    assert info.value.status == 502
    message = str(info.value)
    # Described (status, size), never quoted: a title can echo the request path (issue 11 §6).
    assert "an HTML page" in message and "HTTP 502" in message
    assert f"{len(NGINX_502)} bytes" in message
    assert "Bad Gateway" not in message
    assert "nginx" not in message
    assert len(message) < 300


def test_html_title_is_cut() -> None:
    body = b"<!DOCTYPE html><html><head><title>" + b"x" * 1000 + b"</title></head></html>"
    with pytest.raises(ResponseError) as info:
        parse_response(504, body)
    assert len(str(info.value)) < 200


def test_html_on_2xx_quotes_nothing() -> None:
    body = b"<html><head><title>Hello secret-user@example.com</title></head></html>"
    with pytest.raises(ResponseError) as info:
        parse_response(200, body)
    assert "secret" not in str(info.value)
    assert info.value.status == 200


def test_truncated_json() -> None:
    body = b'{"result": {"document": {"id": 1919, "title": "Demonstra'
    with pytest.raises(ResponseError) as info:
        parse_response(200, body)
    assert info.value.status == 200
    assert "truncated" in str(info.value)
    assert "Demonstra" not in str(info.value)


def test_not_json_message_never_quotes_the_body_or_chains_it() -> None:
    body = b'{"result": {"access_token": "s1morf609228iwyjjpvfv6wsvuja4p8u" oops}'
    with pytest.raises(ResponseError) as info:
        parse_response(200, body)
    assert "s1morf" not in str(info.value)
    assert not any("s1morf" in line for line in info.value.detail)
    # No JSONDecodeError (whose .doc is the whole body) hangs off the exception.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


@pytest.mark.parametrize("body", [b"", b"   \r\n", b"\xef\xbb\xbf"])
def test_empty_body(body: bytes) -> None:
    with pytest.raises(ResponseError) as info:
        parse_response(502, body)
    assert info.value.status == 502


def test_not_utf8() -> None:
    with pytest.raises(ResponseError) as info:
        parse_response(200, b'{"result": "\xff\xfe"}')
    assert info.value.status == 200


@pytest.mark.parametrize("body", [b'{"result": NaN}', b'{"result": Infinity}'])
def test_non_standard_constants_are_refused(body: bytes) -> None:
    with pytest.raises(ResponseError):
        parse_response(200, body)


def test_deeply_nested_json_does_not_crash() -> None:
    with pytest.raises(ResponseError):
        parse_response(200, b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize("body", [b"[]", b"[1, 2]", b'"result"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object(body: bytes) -> None:
    with pytest.raises(ResponseError) as info:
        parse_response(200, body)
    assert info.value.status == 200


def test_object_with_neither_result_nor_error() -> None:
    # e.g. an OAuth token answer sent to the REST parser.
    with pytest.raises(ResponseError):
        parse_response(200, _body({"access_token": "x", "expires_in": 3600}))
    with pytest.raises(ResponseError):
        parse_response(200, _body({"time": {"start": 1}}))


@pytest.mark.parametrize("status", [400, 403, 404, 500, 502, 503])
def test_http_error_without_error_key(status: int) -> None:
    for payload in ({"result": 1}, {"message": "Internal error"}, {}):
        with pytest.raises(ResponseError) as info:
            parse_response(status, _body(payload))
        assert info.value.status == status


@pytest.mark.parametrize("status", [100, 301, 302, 304])
def test_result_with_non_2xx_status(status: int) -> None:
    with pytest.raises(ResponseError) as info:
        parse_response(status, _body({"result": 1}))
    assert info.value.status == status


@given(st.binary(max_size=200))
def test_parse_response_raises_only_library_errors_on_bytes(body: bytes) -> None:
    try:
        envelope = parse_response(200, body)
    except (ResponseError, ApiError):
        return
    assert isinstance(envelope, Envelope)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["result", "error", "error_description", "time", "total", "next", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(_JSON, st.sampled_from([200, 400, 401, 403, 404, 500, 503]))
def test_parse_response_raises_only_library_errors_on_json(payload: object, status: int) -> None:
    try:
        envelope = parse_response(status, _body(payload))
    except (ResponseError, ApiError):
        return
    assert isinstance(envelope, Envelope)


# ---------------------------------------------------------------- TimeInfo


def test_time_info_from_wire_int_start_docgen_2026() -> None:
    time = TimeInfo.from_wire(
        {
            "start": 1774003904,
            "finish": 1774003904.163279,
            "duration": 0.16327905654907227,
            "processing": 1,
            "date_start": "2026-03-20T13:51:44+03:00",
            "date_finish": "2026-03-20T13:51:44+03:00",
            "operating_reset_at": 1774004504,
            "operating": 0,
        }
    )
    assert time is not None
    assert time.start == 1774003904.0
    assert isinstance(time.start, float)
    assert time.processing == 1.0
    assert time.operating_reset_at == 1774004504.0


def test_time_info_missing_fields() -> None:
    time = TimeInfo.from_wire({"start": 1.5, "operating": 0})
    assert time == TimeInfo(start=1.5, operating=0.0)
    assert time is not None
    assert time.operating_reset_at is None
    assert TimeInfo.from_wire({}) == TimeInfo()


def test_time_info_numeric_strings_and_garbage() -> None:
    time = TimeInfo.from_wire(
        {
            "start": "1724916859.46156",
            "finish": " 1724916859 ",
            "duration": "abc",
            "processing": True,
            "operating": "nan",
            "operating_reset_at": [1],
            "date_start": 1724916859,
            "date_finish": None,
        }
    )
    assert time == TimeInfo(start=1724916859.46156, finish=1724916859.0)


@pytest.mark.parametrize("data", [None, [], [1], "time", 5, 1.5, True])
def test_time_info_from_non_object_is_none(data: object) -> None:
    assert TimeInfo.from_wire(data) is None


# ---------------------------------------------------------------- split_batch: fixtures


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


# ---------------------------------------------------------------- split_batch: shapes


TIME = {"start": 1724916859.46156, "finish": 1724916859.464775, "duration": 0.0032}


def test_list_shaped_sections_with_numeric_keys() -> None:
    reply = split_batch(
        {
            "result": [{"documents": []}, None, {"templates": {}}],
            "result_error": [],
            "result_total": [0, "7", None],
            "result_next": ["50"],
            "result_time": [TIME, TIME, TIME],
        },
        {"0": "crm.documentgenerator.document.list", "1": "crm.documentgenerator.x"},
    )
    assert reply.results == {"0": {"documents": []}, "1": None, "2": {"templates": {}}}
    assert "1" in reply.results  # a success that returned null
    assert reply.totals == {"0": 0, "1": 7}
    assert reply.nexts == {"0": 50}
    assert set(reply.times) == {"0", "1", "2"}
    assert reply.errors == {}


def test_object_sections_with_numeric_keys_and_gaps() -> None:
    # PHP encodes {0: .., 2: ..} as an object because the keys are not 0..n-1.
    reply = split_batch(
        {
            "result": {"0": 11, "2": 13},
            "result_error": {"1": {"error": "0", "error_description": "Template not found"}},
            "result_total": [],
            "result_next": [],
            "result_time": {"0": TIME, "2": TIME},
        },
        {"0": "a", "1": "crm.documentgenerator.template.get", "2": "c"},
    )
    assert reply.results == {"0": 11, "2": 13}
    error = reply.errors["1"]
    assert type(error) is NotFoundError
    assert error.method == "crm.documentgenerator.template.get"
    assert set(reply.times) == {"0", "2"}


def test_list_shaped_result_error() -> None:
    reply = split_batch(
        {"result_error": [{"error": "ERROR_BATCH_METHOD_NOT_ALLOWED", "error_description": "x"}]}
    )
    assert type(reply.errors["0"]) is InvalidRequestError
    assert reply.errors["0"].method is None


def test_bare_string_errors() -> None:
    reply = split_batch(
        {
            "result_error": {
                "a": "QUERY_LIMIT_EXCEEDED",
                "b": "expired_token",
                "c": "Document not found",
                "d": "You do not have permissions to view documents",
                "e": "",
                "f": None,
                "g": 100,
            }
        }
    )
    assert type(reply.errors["a"]) is QueryLimitExceededError
    assert type(reply.errors["b"]) is TokenExpiredError
    assert type(reply.errors["c"]) is NotFoundError
    assert (reply.errors["c"].code, reply.errors["c"].description) == ("", "Document not found")
    assert type(reply.errors["d"]) is AccessDeniedError
    assert type(reply.errors["e"]) is InvalidRequestError
    assert reply.errors["f"].code == ""
    assert reply.errors["g"].code == "100"
    assert all(error.status is None for error in reply.errors.values())


def test_an_error_key_is_never_also_a_result() -> None:
    reply = split_batch(
        {"result": {"a": True, "b": 2}, "result_error": {"a": {"error": "ACCESS_DENIED"}}}
    )
    assert reply.results == {"b": 2}
    assert set(reply.errors) == {"a"}


def test_null_and_empty_sections() -> None:
    reply = split_batch(
        {
            "result": None,
            "result_error": None,
            "result_total": {"a": None},
            "result_next": {"a": None},
            "result_time": {"a": [], "b": None},
        }
    )
    assert reply == BatchReply()


@pytest.mark.parametrize("empty", [{}, []])
def test_empty_batch(empty: object) -> None:
    assert split_batch(empty) == BatchReply()


@pytest.mark.parametrize("result", [None, "x", 5, True, [{"result": {}}]])
def test_batch_result_of_wrong_type(result: object) -> None:
    with pytest.raises(ResponseError) as info:
        split_batch(result)
    assert info.value.status == 200


@pytest.mark.parametrize(
    "section", ["result", "result_error", "result_total", "result_next", "result_time"]
)
@pytest.mark.parametrize("value", ["text", 5, True])
def test_batch_section_of_wrong_type(section: str, value: object) -> None:
    with pytest.raises(ResponseError) as info:
        split_batch({section: value})
    assert info.value.status == 200


@pytest.mark.parametrize("section", ["result_total", "result_next"])
@pytest.mark.parametrize("value", ["abc", True, [1], {"x": 1}, 1.5])
def test_unreadable_batch_total_or_next(section: str, value: object) -> None:
    with pytest.raises(ResponseError) as info:
        split_batch({section: {"a": value}})
    assert info.value.status == 200


def test_batch_error_methods_missing_for_key() -> None:
    reply = split_batch({"result_error": {"x": {"error": "ACCESS_DENIED"}}}, {"y": "m"})
    assert reply.errors["x"].method is None


@given(_JSON)
def test_split_batch_raises_only_response_error(result: Any) -> None:
    try:
        reply = split_batch(result)
    except ResponseError as error:
        assert error.status == 200
        return
    assert isinstance(reply, BatchReply)
