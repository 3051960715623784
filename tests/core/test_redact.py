"""No error text quotes anything that can carry the URL or a token (issue 11 §6)."""

from __future__ import annotations

import pickle

import pytest

from bitrix_docgen_async.core.envelope import parse_response, request_id_of, split_batch
from bitrix_docgen_async.core.redact import MAX_TEXT, scrub
from bitrix_docgen_async.errors import (
    ApiError,
    InvalidRequestError,
    NotFoundError,
    ResponseError,
    TokenExpiredError,
)

CODE = "k3j4h5g6f7d8s9a0"
TOKEN = "e8a4f1660000071b00717e7e00000001000007d3c2d0c9b1a5a1ee7d2d7a43c4a9ab38"
PATH = f"/rest/1/{CODE}/crm.documentgenerator.document.add"
URL = f"https://portal.bitrix24.com{PATH}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Wrong request {URL}", "Wrong request <URL>"),
        (f"see {URL}?auth={TOKEN}&x=1 now", "see <URL> now"),
        (f"POST {PATH} failed", "POST <path> failed"),
        (f"bad auth={TOKEN[:10]}xyz&x=1", "bad auth=***&x=1"),
        (f"token {TOKEN} is invalid", "token *** is invalid"),
        (f"code {CODE}.", "code ***."),
        # Words and method names (no digits) and short ids stay.
        (
            "crm.documentgenerator.document.add: Template not found",
            "crm.documentgenerator.document.add: Template not found",
        ),
        ("Document 123456789 not found", "Document 123456789 not found"),
        ("ERROR_METHOD_NOT_FOUND", "ERROR_METHOD_NOT_FOUND"),
        ("", ""),
    ],
)
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_scrub_blanks_known_secrets_of_any_shape() -> None:
    # A secret with no digit escapes the token-shape rule; knowing it catches it.
    secret = "abcdefghijklmnopq"
    assert scrub(f"unknown user {secret}") == f"unknown user {secret}"
    assert scrub(f"unknown user {secret}", [secret]) == "unknown user ***"
    # Secrets too short to search for safely are ignored rather than blanking out words.
    assert scrub("a note", ["note"]) == "a note"


def test_scrub_cuts_long_texts() -> None:
    cut = scrub("word " * 1000)
    assert len(cut) == MAX_TEXT and cut.endswith("...")


def _leaks(error: BaseException, *secrets: str) -> list[str]:
    texts = [str(error), repr(error), repr(vars(error))]
    blob = pickle.dumps(error)
    found = [s for s in secrets if any(s in t for t in texts)]
    found += [s for s in secrets if s.encode() in blob]
    return found


def test_an_html_page_echoing_the_path_is_described_not_quoted() -> None:
    page = (
        f"<html><head><title>502 Bad Gateway: POST {PATH}</title></head>"
        f"<body><h1>{URL}</h1></body></html>"
    ).encode()
    for status in (200, 403, 502, 504):
        with pytest.raises(ResponseError) as caught:
            parse_response(status, page, headers={"Content-Type": "text/html; charset=UTF-8"})
        assert str(caught.value) == (
            f"not JSON: an HTML page (text/html, {len(page)} bytes) (HTTP {status})"
        )
        assert _leaks(caught.value, CODE, "/rest", "Bad Gateway") == []


def test_a_text_body_is_described_not_quoted() -> None:
    body = f"Forbidden: {PATH}".encode()
    with pytest.raises(ResponseError) as caught:
        parse_response(403, body, headers={"content-type": "text/plain"})
    assert "text/plain" in str(caught.value) and f"{len(body)} bytes" in str(caught.value)
    assert _leaks(caught.value, CODE) == []


def test_a_json_error_echoing_the_url_and_token_keeps_the_portal_message_only() -> None:
    body = (
        b'{"error": "INVALID_REQUEST", "error_description": "Wrong request '
        + URL.encode()
        + b" with auth "
        + TOKEN.encode()
        + b'"}'
    )
    with pytest.raises(InvalidRequestError) as caught:
        parse_response(400, body, method="crm.documentgenerator.document.add", secrets=[TOKEN])
    error = caught.value
    assert error.description == "Wrong request <URL> with auth ***"
    assert error.code == "INVALID_REQUEST"
    assert _leaks(error, CODE, TOKEN, "/rest") == []


def test_classification_reads_the_raw_texts() -> None:
    # The scrubbed description still maps by its words; a known code still wins.
    body = ('{"error": "", "error_description": "Template not found at ' + URL + '"}').encode()
    with pytest.raises(NotFoundError) as caught:
        parse_response(400, body)
    assert caught.value.description == "Template not found at <URL>"
    body = b'{"error": "expired_token", "error_description": "The access token has expired."}'
    with pytest.raises(TokenExpiredError):
        parse_response(401, body)


def test_the_request_id_is_carried() -> None:
    body = b'{"error": "NOT_FOUND", "error_description": "Document not found"}'
    with pytest.raises(ApiError) as caught:
        parse_response(404, body, headers={"X-Bitrix-RI": "abc123def-456"})
    assert caught.value.request_id == "abc123def-456"
    with pytest.raises(ApiError) as caught:
        parse_response(404, body)
    assert caught.value.request_id is None
    ok = parse_response(200, b'{"result": 1}', headers={"x-bitrix-ri": "r-1"})
    assert ok.request_id == "r-1"


@pytest.mark.parametrize("value", ["", " ", "a b", "x" * 129, "<script>", f"{URL}"])
def test_an_odd_request_id_is_dropped(value: str) -> None:
    assert request_id_of({"x-bitrix-ri": value}) is None


def test_batch_command_errors_are_scrubbed_and_carry_the_request_id() -> None:
    reply = split_batch(
        {
            "result": {"c0": {"ok": 1}},
            "result_error": {
                "c1": {"error": "100", "error_description": f"Could not construct at {PATH}"},
                "c2": f"failed with {TOKEN}",
            },
        },
        {"c1": "crm.documentgenerator.numerator.get", "c2": "crm.documentgenerator.x"},
        secrets=[TOKEN],
        request_id="rid-7",
    )
    assert reply.errors["c1"].description == "Could not construct at <path>"
    assert reply.errors["c2"].description == "failed with ***"
    for error in reply.errors.values():
        assert error.request_id == "rid-7"
        assert _leaks(error, CODE, TOKEN) == []
