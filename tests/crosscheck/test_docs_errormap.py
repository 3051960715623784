"""Cross-check: every error example of the official docs maps to the expected class.

The same contract as ``tests/core/test_errormap.py`` (which runs on the project's corpus), run on
the docs' own examples (``../shared/fixtures/docs/``) with the HTTP status their README gives.
Skipped, with the reason printed, where that folder is absent (a plain clone).
"""

from __future__ import annotations

import json

import pytest

from bitrix_docgen_async.core.envelope import parse_response
from bitrix_docgen_async.core.errormap import error_for, oauth_error_for
from bitrix_docgen_async.errors import (
    AccessDeniedError,
    ApiError,
    AuthError,
    InvalidRequestError,
    NotFoundError,
    OAuthError,
    OperationTimeLimitError,
    OverloadError,
    QueryLimitExceededError,
    ServerError,
    TokenExpiredError,
)
from tests.corpus import SHARED, SHARED_MISSING

if SHARED_MISSING:
    pytest.skip(SHARED_MISSING, allow_module_level=True)

DOCS = SHARED / "docs"

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
