"""Tests for core.envelope: success/error envelopes, the time block and batch splitting."""

from __future__ import annotations

import json
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
from tests.corpus import corpus_files, docgen, load, method, raw, status

DOCGEN_RESPONSES = [
    n for n in corpus_files() if n.startswith("docgen/") and n.endswith(".response.json")
]
NUMERATOR_ADD = "crm.documentgenerator.numerator.add"
NUMERATOR_GET = "crm.documentgenerator.numerator.get"
TEMPLATE_GET = "crm.documentgenerator.template.get"
DOCUMENT_ADD = "crm.documentgenerator.document.add"
DOCUMENT_LIST = "crm.documentgenerator.document.list"


def _body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def _parse_example(name: str) -> Envelope:
    assert status(name) == 200
    return parse_response(200, raw(name), method=method(name))


# ---------------------------------------------------------------- success examples


def test_example_sets_are_not_empty() -> None:
    assert len(DOCGEN_RESPONSES) == 20
    assert set(BATCHES) == {n for n in corpus_files() if n.startswith("batch/")} | {
        "limits/batch.OPERATION_TIME_LIMIT.json"
    }


@pytest.mark.parametrize("name", DOCGEN_RESPONSES)
def test_docgen_response_example_parses_with_time(name: str) -> None:
    payload = load(name)
    envelope = _parse_example(name)
    assert isinstance(envelope, Envelope)
    assert envelope.result == payload["result"]
    assert isinstance(envelope.time, TimeInfo)
    # docgen answers of 2026 send an integer start and processing
    assert isinstance(payload["time"]["start"], int)
    assert envelope.time.start == float(payload["time"]["start"])
    assert envelope.time.finish is not None
    assert envelope.time.date_start is not None
    assert envelope.time.operating_reset_at == envelope.time.start + 600
    assert envelope.total == payload.get("total")
    assert envelope.next is None


def test_document_list_example_details() -> None:
    envelope = _parse_example(docgen("document.list.response"))
    assert envelope.total == 2
    assert envelope.next is None
    assert [doc["id"] for doc in envelope.result["documents"]] == ["214", "209"]
    assert envelope.time == TimeInfo(
        start=1778575543.0,
        finish=1778575543.0731,
        duration=0.0731,
        processing=0.0,
        operating=0.0,
        operating_reset_at=1778576143.0,
        date_start="2026-05-12T10:45:43+02:00",
        date_finish="2026-05-12T10:45:43+02:00",
    )


def test_document_add_example_reports_operating() -> None:
    envelope = _parse_example(docgen("document.add.response"))
    assert envelope.time is not None
    assert envelope.time.operating == pytest.approx(1.2108874320983887)
    assert envelope.time.duration == pytest.approx(1.732114)


def test_event_answers_have_operating_but_no_reset_at() -> None:
    for name in ("event.bind", "event.unbind", "event.get"):
        envelope = parse_response(200, raw(f"events/{name}.response.json"), method=name)
        assert envelope.time is not None
        assert envelope.time.operating == 0.0
        assert envelope.time.operating_reset_at is None
        assert envelope.time.start == pytest.approx(
            load(f"events/{name}.response.json")["time"]["start"]
        )


def test_an_example_cut_short_is_not_json() -> None:
    # half an answer (a dropped connection) is a ResponseError, never a crash
    body = raw(docgen("document.get.response"))
    with pytest.raises(ResponseError) as info:
        parse_response(200, body[: len(body) // 2])
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


# ---------------------------------------------------------------- split_batch: examples

#: The corpus' batch answers and the method of each command key in them.
BATCHES: dict[str, dict[str, str]] = {
    "batch/batch.response.json": {"numerator": NUMERATOR_GET, "docs": DOCUMENT_LIST},
    "batch/batch.halt0.json": {"first": NUMERATOR_GET, "second": TEMPLATE_GET},
    "batch/batch.halt1.json": {"add": NUMERATOR_ADD, "get": NUMERATOR_GET},
    "batch/batch.numeric-keys.json": {"0": NUMERATOR_GET, "1": DOCUMENT_LIST},
    "limits/batch.OPERATION_TIME_LIMIT.json": {"a1": DOCUMENT_ADD, "a2": DOCUMENT_ADD},
}


def _batch(name: str) -> tuple[Envelope, BatchReply]:
    assert status(name) == 200  # a batch answers 200 whatever its commands did
    envelope = parse_response(200, raw(name), method="batch")
    return envelope, split_batch(envelope.result, BATCHES[name])


def test_batch_response_example() -> None:
    envelope, reply = _batch("batch/batch.response.json")
    assert envelope.time is not None
    assert envelope.time.duration == pytest.approx(0.131842)
    assert set(reply.results) == {"numerator", "docs"}
    assert reply.results["numerator"]["numerator"]["template"] == "EU-{NUMBER}"
    assert [d["id"] for d in reply.results["docs"]["documents"]] == ["214"]
    assert reply.errors == {}  # result_error: []
    assert reply.totals == {"docs": 51}
    assert reply.nexts == {"docs": 50}
    assert set(reply.times) == {"numerator", "docs"}
    assert reply.times["numerator"].start == pytest.approx(1778583600.228391)
    # every command of one batch reports the same running operating sum
    assert reply.times["numerator"].operating == reply.times["docs"].operating == 0.41


def test_batch_halt0_example() -> None:
    _, reply = _batch("batch/batch.halt0.json")
    assert set(reply.results) == {"first"}
    assert list(reply.errors) == ["second"]
    error = reply.errors["second"]
    assert type(error) is NotFoundError
    assert (error.code, error.description, error.status, error.method) == (
        "0",
        "Template not found",
        None,
        TEMPLATE_GET,
    )
    assert (reply.totals, reply.nexts) == ({}, {})  # [] sections
    assert set(reply.times) == {"first"}  # a failed command has no result_time


def test_batch_halt1_example() -> None:
    _, reply = _batch("batch/batch.halt1.json")
    assert reply.results == {}
    assert set(reply.errors) == {"add"}
    assert type(reply.errors["add"]) is InvalidRequestError
    assert reply.errors["add"].method == NUMERATOR_ADD
    # "get" never ran: in no section at all.
    assert "get" not in reply.results
    assert (reply.totals, reply.nexts, reply.times) == ({}, {}, {})


def test_batch_with_numeric_keys_example() -> None:
    _, reply = _batch("batch/batch.numeric-keys.json")
    assert set(reply.results) == {"0", "1"}
    assert reply.results["1"] == {"documents": []}
    assert reply.totals == {"1": 0}  # a partial section is an object keyed by position
    assert reply.errors == {}
    assert set(reply.times) == {"0", "1"}


def test_operation_time_limit_inside_a_batch() -> None:
    envelope, reply = _batch("limits/batch.OPERATION_TIME_LIMIT.json")
    assert envelope.time is not None
    assert envelope.time.operating == pytest.approx(481.20713090896606)
    assert envelope.time.operating_reset_at == 1778584600.0
    assert reply.results == {}
    assert list(reply.errors) == ["a1"]
    error = reply.errors["a1"]
    assert type(error) is OperationTimeLimitError
    assert error.retryable
    assert error.status is None
    assert error.method == DOCUMENT_ADD
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
