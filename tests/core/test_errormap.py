"""Tests for core.errormap: portal error codes -> ApiError subclasses (docs/portal.md#errors)."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitrix_docgen_async.core.envelope import parse_response
from bitrix_docgen_async.core.errormap import ERROR_CLASSES, error_for, oauth_error_for
from bitrix_docgen_async.errors import (
    AccessDeniedError,
    ApiError,
    AuthError,
    DocumentLimitError,
    InvalidRequestError,
    MethodNotFoundError,
    NotFoundError,
    OAuthError,
    OperationTimeLimitError,
    OverloadError,
    QueryLimitExceededError,
    ServerError,
    TokenExpiredError,
    WrongAuthTypeError,
)
from tests.corpus import corpus_files, docgen, load, raw, status

# Expected class of every error example of the corpus; the HTTP status comes from its index
# (tests/fixtures/manifest.json). Keyed by the path under tests/fixtures/.
ERROR_FIXTURES: dict[str, type[ApiError]] = {
    # --- crm.documentgenerator.* (HTTP 400, docs/portal.md#errors) ---
    docgen("document.add.error"): DocumentLimitError,  # DOCGEN_LIMIT_ERROR
    docgen("document.delete.error"): InvalidRequestError,  # "100" constructor (id missing)
    docgen("document.enablepublicurl.error"): AccessDeniedError,  # DOCGEN_ACCESS_ERROR
    docgen("document.get.error"): NotFoundError,  # "0" Document not found
    docgen("document.getfields.error"): AccessDeniedError,  # "" no permission to view
    docgen("document.list.error"): InvalidRequestError,  # "100" Unknown field definition
    docgen("document.update.error"): AccessDeniedError,  # "" no permission to modify
    docgen("document.upload.error"): InvalidRequestError,  # "0" Empty required fields
    docgen("numerator.add.error"): InvalidRequestError,  # "0" Empty required fields: name
    docgen("numerator.delete.error"): InvalidRequestError,  # "100" constructor (id missing)
    docgen("numerator.get.error"): NotFoundError,  # "100" Could not construct {numerator}
    docgen("numerator.list.error"): AccessDeniedError,  # "" no permission to modify templates
    docgen("numerator.update.error"): AccessDeniedError,  # DOCGEN_ACCESS_ERROR
    docgen("template.add.error"): InvalidRequestError,  # "0" Empty required fields
    docgen("template.delete.error"): NotFoundError,  # "0" Template not found
    docgen("template.get.error"): NotFoundError,
    docgen("template.list.error"): AccessDeniedError,  # DOCGEN_ACCESS_ERROR
    docgen("template.getfields.error"): InvalidRequestError,  # "" deleted template
    docgen("template.update.error"): InvalidRequestError,  # "0" Could not save file
    # --- event.* ---
    "events/event.bind.error.json": NotFoundError,  # ERROR_EVENT_NOT_FOUND, 400
    "events/event.get.error.json": WrongAuthTypeError,  # 403 under a webhook
    "events/event.unbind.error.json": AccessDeniedError,  # 403
    # --- limits ---
    "limits/OPERATION_TIME_LIMIT.json": OperationTimeLimitError,  # 429
    "limits/OVERLOAD_LIMIT.json": OverloadError,  # 503, not transient
    "limits/QUERY_LIMIT_EXCEEDED.json": QueryLimitExceededError,  # 503
    # --- the OAuth server, read as a REST answer would be ---
    "oauth/token.invalid_client.json": OAuthError,  # 400
    "oauth/token.invalid_grant.json": OAuthError,  # 400
    "oauth/token.wrong_client.json": OAuthError,  # 200
}

OAUTH_SERVER_FIXTURES = [
    "oauth/token.invalid_client.json",
    "oauth/token.invalid_grant.json",
    "oauth/token.wrong_client.json",
]


def _load(relative: str) -> dict[str, object]:
    data = load(relative)
    assert isinstance(data, dict)
    return data


def _status(relative: str) -> int:
    code = status(relative)
    assert code is not None
    return code


def test_the_table_lists_every_error_example() -> None:
    found = {
        name
        for name in corpus_files()
        if name.endswith(".json") and "error" in _load(name) and "result" not in _load(name)
    }
    assert len(found) == 28
    assert found == set(ERROR_FIXTURES)
    new = docgen("document.new.error")
    assert {*found, new} - set(ERROR_FIXTURES) == {new}  # the guard notices a new file


def test_the_limit_and_oauth_statuses_are_the_documented_ones() -> None:
    limits = sorted(n for n in ERROR_FIXTURES if n.startswith("limits/"))
    assert [_status(n) for n in limits] == [429, 503, 503]
    assert {n: _status(n) for n in OAUTH_SERVER_FIXTURES} == {
        "oauth/token.invalid_client.json": 400,
        "oauth/token.invalid_grant.json": 400,
        "oauth/token.wrong_client.json": 200,  # an error with HTTP 200
    }
    assert {_status(n) for n in ERROR_FIXTURES if n.startswith("docgen/")} == {400}


@pytest.mark.parametrize(("relative", "cls"), sorted(ERROR_FIXTURES.items()))
def test_error_example_maps_to_expected_class(relative: str, cls: type[ApiError]) -> None:
    status = _status(relative)
    data = _load(relative)
    code = data["error"]
    description = data.get("error_description", "")
    assert isinstance(code, str)
    assert isinstance(description, str)

    error = error_for(code, description, status=status, method="some.method")
    assert type(error) is cls
    assert (error.code, error.description) == (code, description)
    assert (error.status, error.method) == (status, "some.method")

    # The same body through parse_response raises the same class.
    with pytest.raises(cls) as info:
        parse_response(status, raw(relative), method="some.method")
    assert type(info.value) is cls
    assert info.value.status == status


@pytest.mark.parametrize("relative", OAUTH_SERVER_FIXTURES)
def test_oauth_server_example_is_always_oauth_error(relative: str) -> None:
    data = _load(relative)
    status = _status(relative)
    error = oauth_error_for(
        str(data["error"]), str(data.get("error_description", "")), status=status
    )
    assert type(error) is OAuthError
    assert error.status == status
    assert error.code == data["error"]
    assert error.method is None
    assert not error.retryable


# Every code the brief and protocol.md §4.2 / "more codes" / §8.8 / §5.3 name.
CODE_CLASSES: list[tuple[str, type[ApiError]]] = [
    ("QUERY_LIMIT_EXCEEDED", QueryLimitExceededError),
    ("OPERATION_TIME_LIMIT", OperationTimeLimitError),
    ("OVERLOAD_LIMIT", OverloadError),
    ("expired_token", TokenExpiredError),
    ("NO_AUTH_FOUND", AuthError),
    ("invalid_token", AuthError),
    ("authorization_error", AuthError),
    ("APPLICATION_NOT_FOUND", AuthError),
    ("ERROR_OAUTH", AuthError),
    ("NOT_INSTALLED", AuthError),
    ("PAYMENT_REQUIRED", AuthError),
    ("METHOD_CONFIRM_WAITING", AuthError),
    ("WRONG_AUTH_TYPE", WrongAuthTypeError),
    ("ACCESS_DENIED", AccessDeniedError),
    ("insufficient_scope", AccessDeniedError),
    ("INVALID_CREDENTIALS", AccessDeniedError),
    ("user_access_error", AccessDeniedError),
    ("DOCGEN_ACCESS_ERROR", AccessDeniedError),
    ("METHOD_CONFIRM_DENIED", AccessDeniedError),
    ("ERROR_METHOD_NOT_FOUND", MethodNotFoundError),
    ("ERROR_EVENT_NOT_FOUND", NotFoundError),
    ("ERROR_MANIFEST_IS_NOT_AVAILABLE", NotFoundError),
    ("DOCGEN_LIMIT_ERROR", DocumentLimitError),
    ("ERROR_BATCH_LENGTH_EXCEEDED", InvalidRequestError),
    ("ERROR_BATCH_METHOD_NOT_ALLOWED", InvalidRequestError),
    ("INVALID_REQUEST", InvalidRequestError),
    ("BX_EMPTY_REQUIRED", InvalidRequestError),
    ("BX_ERROR", InvalidRequestError),
    ("INTERNAL_SERVER_ERROR", ServerError),
    ("ERROR_UNEXPECTED_ANSWER", ServerError),
    ("PORTAL_DELETED", ServerError),
    ("invalid_grant", OAuthError),
    ("invalid_client", OAuthError),
    ("wrong_client", OAuthError),
    ("invalid_scope", AccessDeniedError),
]


@pytest.mark.parametrize(("code", "cls"), CODE_CLASSES)
@pytest.mark.parametrize("status", [None, 200, 400, 401, 403, 404, 500, 503])
def test_known_code_wins_over_status(code: str, cls: type[ApiError], status: int | None) -> None:
    # A description that would point elsewhere must not matter either.
    error = error_for(code, "Document not found", status=status)
    assert type(error) is cls
    assert error.status == status


@pytest.mark.parametrize(("code", "cls"), CODE_CLASSES)
def test_codes_compare_case_insensitively(code: str, cls: type[ApiError]) -> None:
    for variant in (code.upper(), code.lower(), code.swapcase(), f" {code} "):
        error = error_for(variant)
        assert type(error) is cls
        assert error.code == variant  # kept as sent


def test_expired_token_in_any_case_is_retryable() -> None:
    for code in ("expired_token", "EXPIRED_TOKEN", "Expired_Token"):
        assert error_for(code, status=401).retryable


def test_table_keys_are_lower_case_and_read_only() -> None:
    assert all(key == key.lower() for key in ERROR_CLASSES)
    with pytest.raises(TypeError):
        ERROR_CLASSES["x"] = ApiError  # type: ignore[index]


def test_only_pre_execution_refusals_are_retryable() -> None:
    retryable = {code for code, cls in ERROR_CLASSES.items() if cls.retryable}
    assert retryable == {"query_limit_exceeded", "operation_time_limit", "expired_token"}
    assert not error_for("OVERLOAD_LIMIT", status=503).retryable


# The docgen's "0", "100" and "" codes, classified by their description (protocol.md §8.8).
DOCGEN_DESCRIPTIONS: list[tuple[str, str, type[ApiError]]] = [
    ("0", "Document not found", NotFoundError),
    ("", "Document not found", NotFoundError),
    ("0", "Template not found", NotFoundError),
    ("0", "Region not found", NotFoundError),
    ("100", "Could not construct parameter {numerator}", NotFoundError),
    ("100", "Could not construct parameter {template}", NotFoundError),
    ("", "You do not have permissions to view documents", AccessDeniedError),
    ("", "You do not have permissions to modify templates", AccessDeniedError),
    ("0", "You do not have permissions to modify this document", AccessDeniedError),
    ("0", "You do not have permissions to modify settings", AccessDeniedError),
    ("", "Access denied", AccessDeniedError),
    ("0", "Access denied!", AccessDeniedError),
    ("", "Maximum count of documents has been reached", DocumentLimitError),
    ("0", "No provider for entityTypeId", InvalidRequestError),
    ("0", 'Empty required parameter "value"', InvalidRequestError),
    ("0", "Empty required fields: name, numeratorId, region, entityTypeId", InvalidRequestError),
    ("0", "Cannot create document on deleted template", InvalidRequestError),
    ("0", "Error getting next number", InvalidRequestError),
    ("0", "Missing file content", InvalidRequestError),
    ("0", "Cant update not saved document", InvalidRequestError),
    ("100", "Could not find value for parameter {fields}", InvalidRequestError),
    (
        "100",
        "Bitrix\\DocumentGenerator\\Template constructor must be is public",
        InvalidRequestError,
    ),
    ("100", "Unknown field definition ENTITY_TYPE_ID", InvalidRequestError),
    ("", "Module documentgenerator is not installed", InvalidRequestError),
    ("", "", InvalidRequestError),
]


@pytest.mark.parametrize(("code", "description", "cls"), DOCGEN_DESCRIPTIONS)
@pytest.mark.parametrize("status", [400, None])
def test_docgen_codes_are_classified_by_description(
    code: str, description: str, cls: type[ApiError], status: int | None
) -> None:
    error = error_for(code, description, status=status, method="crm.documentgenerator.x")
    assert type(error) is cls
    assert (error.code, error.description, error.status) == (code, description, status)


def test_description_match_ignores_case_and_spaces() -> None:
    assert type(error_for("0", "  DOCUMENT NOT FOUND  ")) is NotFoundError
    assert type(error_for("", "you DO NOT HAVE PERMISSIONS to x")) is AccessDeniedError


def test_unknown_code_is_classified_by_description_too() -> None:
    assert type(error_for("SOMETHING_NEW", "Entity not found", status=400)) is NotFoundError
    assert type(error_for("SOMETHING_NEW", "Access denied", status=400)) is AccessDeniedError


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, AuthError),
        (403, AccessDeniedError),
        (404, NotFoundError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (599, ServerError),
        (400, InvalidRequestError),
        (405, InvalidRequestError),
        (409, InvalidRequestError),
        (429, InvalidRequestError),
        (200, InvalidRequestError),
        (None, InvalidRequestError),
    ],
)
@pytest.mark.parametrize("code", ["", "0", "100", "ERROR_HANDLER_ALREADY_EXIST"])
def test_status_fallback(code: str, status: int | None, cls: type[ApiError]) -> None:
    error = error_for(code, "Something odd happened", status=status)
    assert type(error) is cls
    assert error.status == status


def test_odd_input_is_coerced_not_crashed() -> None:
    error = error_for(None, None)  # type: ignore[arg-type]
    assert type(error) is InvalidRequestError
    assert (error.code, error.description) == ("", "")

    error = error_for(100, 42, status=400)  # type: ignore[arg-type]
    assert (error.code, error.description) == ("100", "42")

    error = error_for(["x"], {"y": 1})  # type: ignore[arg-type]
    assert isinstance(error.code, str)
    assert isinstance(error.description, str)

    # A bool is not a status.
    error = error_for("", "", status=True)
    assert error.status is None

    oauth = oauth_error_for(None, None, status=400)  # type: ignore[arg-type]
    assert (oauth.code, oauth.description, oauth.status) == ("", "", 400)


@given(
    code=st.one_of(st.none(), st.text(), st.integers(), st.floats()),
    description=st.one_of(st.none(), st.text(), st.integers()),
    status=st.one_of(st.none(), st.integers(min_value=100, max_value=599)),
)
def test_error_for_never_raises(code: object, description: object, status: int | None) -> None:
    error = error_for(code, description, status=status, method="m")  # type: ignore[arg-type]
    assert isinstance(error, ApiError)
    assert isinstance(error.code, str)
    assert isinstance(error.description, str)
    assert str(error)


@pytest.mark.parametrize("code", ["invalid_grant", "expired_token", "PAYMENT_REQUIRED", "x", ""])
def test_oauth_error_for_is_always_oauth_error(code: str) -> None:
    error = oauth_error_for(code, "why", status=400)
    assert type(error) is OAuthError
    assert isinstance(error, AuthError)
    assert (error.code, error.description, error.status) == (code, "why", 400)
    assert not error.retryable


def test_message_names_method_code_and_status() -> None:
    error = error_for("0", "Template not found", status=400, method="crm.documentgenerator.x")
    assert str(error) == "crm.documentgenerator.x: 0: Template not found (HTTP 400)"


def test_mapped_errors_pickle() -> None:
    error = error_for("DOCGEN_LIMIT_ERROR", "Maximum", status=400, method="m")
    clone = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert type(clone) is DocumentLimitError
    assert (clone.code, clone.description, clone.status, clone.method) == (
        "DOCGEN_LIMIT_ERROR",
        "Maximum",
        400,
        "m",
    )
