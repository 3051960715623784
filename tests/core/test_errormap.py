"""Tests for core.errormap: portal error codes -> ApiError subclasses (protocol.md §4, §8.8)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

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

DOCS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "docs"

# Expected class and the HTTP status the docs (fixtures/docs/README.md) give for every error
# fixture. Keyed by the path under fixtures/docs/.
ERROR_FIXTURES: dict[str, tuple[type[ApiError], int]] = {
    # --- crm.documentgenerator.* (HTTP 400, protocol.md §8.8) ---
    "crm.documentgenerator/crm.documentgenerator.document.add.error.json": (
        InvalidRequestError,  # "0" No provider for entityTypeId
        400,
    ),
    "crm.documentgenerator/crm.documentgenerator.document.delete.error.json": (
        InvalidRequestError,  # "100" ...Document constructor must be is public (missing id)
        400,
    ),
    "crm.documentgenerator/crm.documentgenerator.document.enablepublicurl.error.json": (
        NotFoundError,  # "0" Document not found
        400,
    ),
    "crm.documentgenerator/crm.documentgenerator.document.get.error.json": (AccessDeniedError, 400),
    "crm.documentgenerator/crm.documentgenerator.document.getfields.error.json": (
        AccessDeniedError,
        400,
    ),
    "crm.documentgenerator/crm.documentgenerator.document.list.error.json": (
        AccessDeniedError,  # ACCESS_DENIED
        400,
    ),
    "crm.documentgenerator/crm.documentgenerator.document.update.error.json": (
        AccessDeniedError,
        400,
    ),
    "crm.documentgenerator/crm.documentgenerator.document.upload.error.json": (
        InvalidRequestError,  # "100" Invalid value {} to match with parameter {fields}
        400,
    ),
    "crm.documentgenerator/crm.documentgenerator.numerator.add.error.json": (
        InvalidRequestError,  # "0" Empty required fields: template
        400,
    ),
    "crm.documentgenerator/crm.documentgenerator.numerator.delete.error.json": (
        NotFoundError,  # "100" Could not construct parameter {numerator}
        400,
    ),
    "crm.documentgenerator/crm.documentgenerator.numerator.get.error.json": (NotFoundError, 400),
    "crm.documentgenerator/crm.documentgenerator.numerator.list.error.json": (
        AccessDeniedError,  # "" You do not have permissions to modify templates
        400,
    ),
    "crm.documentgenerator/crm.documentgenerator.numerator.update.error.json": (NotFoundError, 400),
    "crm.documentgenerator/crm.documentgenerator.template.add.error.json": (
        InvalidRequestError,
        400,
    ),
    "crm.documentgenerator/crm.documentgenerator.template.delete.error.json": (NotFoundError, 400),
    "crm.documentgenerator/crm.documentgenerator.template.get.error.json": (NotFoundError, 400),
    "crm.documentgenerator/crm.documentgenerator.template.getfields.error.json": (
        AccessDeniedError,
        400,
    ),
    "crm.documentgenerator/crm.documentgenerator.template.list.error.json": (
        AccessDeniedError,
        400,
    ),
    "crm.documentgenerator/crm.documentgenerator.template.update.error.json": (NotFoundError, 400),
    # --- documentgenerator.* (non-CRM; HTTP 400, role.* "400, 403") ---
    "documentgenerator/documentgenerator.document.add.error.json": (InvalidRequestError, 400),
    "documentgenerator/documentgenerator.document.delete.error.json": (NotFoundError, 400),
    "documentgenerator/documentgenerator.document.enablepublicurl.error.json": (NotFoundError, 400),
    "documentgenerator/documentgenerator.document.get.error.json": (NotFoundError, 400),
    "documentgenerator/documentgenerator.document.getfields.error.json": (AccessDeniedError, 400),
    "documentgenerator/documentgenerator.document.list.error.json": (AccessDeniedError, 400),
    "documentgenerator/documentgenerator.document.update.error.json": (NotFoundError, 400),
    "documentgenerator/documentgenerator.numerator.add.error.json": (InvalidRequestError, 400),
    "documentgenerator/documentgenerator.numerator.delete.error.json": (AccessDeniedError, 400),
    "documentgenerator/documentgenerator.numerator.get.error.json": (AccessDeniedError, 400),
    "documentgenerator/documentgenerator.numerator.list.error.json": (AccessDeniedError, 400),
    "documentgenerator/documentgenerator.numerator.update.error.json": (AccessDeniedError, 400),
    "documentgenerator/documentgenerator.region.add.error.json": (InvalidRequestError, 400),
    "documentgenerator/documentgenerator.region.delete.error.json": (InvalidRequestError, 400),
    "documentgenerator/documentgenerator.region.get.error.json": (NotFoundError, 400),
    "documentgenerator/documentgenerator.region.list.error.json": (AccessDeniedError, 400),
    "documentgenerator/documentgenerator.region.update.error.json": (NotFoundError, 400),
    "documentgenerator/documentgenerator.role.add.error.json": (InvalidRequestError, 400),
    "documentgenerator/documentgenerator.role.delete.error.json": (AccessDeniedError, 403),
    "documentgenerator/documentgenerator.role.fillaccesses.error.json": (AccessDeniedError, 403),
    "documentgenerator/documentgenerator.role.get.error.json": (AccessDeniedError, 403),
    "documentgenerator/documentgenerator.role.list.error.json": (AccessDeniedError, 403),
    "documentgenerator/documentgenerator.role.update.error.json": (AccessDeniedError, 403),
    "documentgenerator/documentgenerator.template.add.error.json": (InvalidRequestError, 400),
    "documentgenerator/documentgenerator.template.delete.error.json": (NotFoundError, 400),
    "documentgenerator/documentgenerator.template.get.error.json": (NotFoundError, 400),
    "documentgenerator/documentgenerator.template.getfields.error.json": (
        InvalidRequestError,  # "0" Cannot get fields from deleted template
        400,
    ),
    "documentgenerator/documentgenerator.template.list.error.json": (AccessDeniedError, 400),
    "documentgenerator/documentgenerator.template.update.error.json": (NotFoundError, 400),
    # --- events ---
    "events/event.bind.error.json": (NotFoundError, 400),  # ERROR_EVENT_NOT_FOUND
    "events/event.offline.get.error.json": (AccessDeniedError, 403),
    "events/event.unbind.error.json": (AccessDeniedError, 403),
    # --- errors/ ---
    "errors/INVALID_CREDENTIALS.json": (AccessDeniedError, 403),
    "errors/METHOD_CONFIRM_WAITING.json": (AuthError, 401),
    "errors/error-format-example.json": (InvalidRequestError, 400),  # unknown code, no status
    "errors/from-b24pysdk/ACCESS_DENIED.json": (AccessDeniedError, 403),
    "errors/from-b24pysdk/APPLICATION_NOT_FOUND.json": (AuthError, 401),
    "errors/from-b24pysdk/ERROR_OAUTH.json": (AuthError, 401),
    "errors/from-b24pysdk/ERROR_UNEXPECTED_ANSWER.json": (ServerError, 500),
    "errors/from-b24pysdk/NOT_INSTALLED.json": (AuthError, 401),
    "errors/from-b24pysdk/NO_AUTH_FOUND.json": (AuthError, 401),
    "errors/from-b24pysdk/OPERATION_TIME_LIMIT.json": (OperationTimeLimitError, 429),
    "errors/from-b24pysdk/OVERLOAD_LIMIT.json": (OverloadError, 503),
    "errors/from-b24pysdk/PAYMENT_REQUIRED-portal.json": (AuthError, 401),
    "errors/from-b24pysdk/PORTAL_DELETED.json": (ServerError, 410),
    "errors/from-b24pysdk/QUERY_LIMIT_EXCEEDED.json": (QueryLimitExceededError, 503),
    "errors/from-b24pysdk/authorization_error.json": (AuthError, 401),
    "errors/from-b24pysdk/expired_token.json": (TokenExpiredError, 401),
    "errors/from-b24pysdk/insufficient_scope-access-token.json": (AccessDeniedError, 403),
    "errors/from-b24pysdk/insufficient_scope-webhook.json": (AccessDeniedError, 403),
    "errors/from-b24pysdk/invalid_token.json": (AuthError, 401),
    "errors/from-b24pysdk/oauth-INVALID_SCOPE.json": (AccessDeniedError, 403),
    "errors/from-b24pysdk/oauth-invalid_client.json": (OAuthError, 400),
    "errors/from-b24pysdk/oauth-invalid_grant.json": (OAuthError, 400),
    "errors/from-b24pysdk/oauth-invalid_request.json": (InvalidRequestError, 400),
    "errors/from-b24pysdk/oauth-wrong_client.json": (OAuthError, 200),
    "errors/from-b24pysdk/user_access_error.json": (AccessDeniedError, 403),
}

OAUTH_SERVER_FIXTURES = {
    "errors/from-b24pysdk/oauth-INVALID_SCOPE.json": 403,
    "errors/from-b24pysdk/oauth-invalid_client.json": 400,
    "errors/from-b24pysdk/oauth-invalid_grant.json": 400,
    "errors/from-b24pysdk/oauth-invalid_request.json": 400,
    "errors/from-b24pysdk/oauth-wrong_client.json": 200,
    "oauth/token.error-payment-required.json": 400,
}


def _load(relative: str) -> dict[str, object]:
    data = json.loads((DOCS / relative).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_table_lists_every_error_fixture() -> None:
    found = {
        path.relative_to(DOCS).as_posix()
        for path in DOCS.rglob("*.json")
        if path.name.endswith(".error.json") or (DOCS / "errors") in path.parents
    }
    assert found, DOCS
    assert found == set(ERROR_FIXTURES)


@pytest.mark.parametrize(("relative", "expected"), sorted(ERROR_FIXTURES.items()))
def test_error_fixture_maps_to_expected_class(
    relative: str, expected: tuple[type[ApiError], int]
) -> None:
    cls, status = expected
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
        parse_response(status, (DOCS / relative).read_bytes(), method="some.method")
    assert type(info.value) is cls
    assert info.value.status == status


@pytest.mark.parametrize(("relative", "status"), sorted(OAUTH_SERVER_FIXTURES.items()))
def test_oauth_server_fixture_is_always_oauth_error(relative: str, status: int) -> None:
    data = _load(relative)
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
