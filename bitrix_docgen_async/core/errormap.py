"""Map a portal's ``{"error", "error_description"}`` pair to the right :class:`ApiError` subclass.

Pure: no I/O. The rules, in order (docs/portal.md#errors):

1. The code decides when it is known. Codes are compared case-insensitively, because Bitrix24
   mixes ``expired_token`` and ``QUERY_LIMIT_EXCEEDED`` (portal.md#errors; PY ``.upper()``, PHP
   ``strtolower()``). The HTTP status is advisory: the docs and the SDKs disagree on the status of
   ``insufficient_scope`` and ``PORTAL_DELETED`` (portal.md#errors,
   portal.md#where-the-sources-disagree), so a known code wins.
2. The document generator answers with the codes ``"0"``, ``"100"`` and ``""`` for very different
   failures (portal.md#document-generator-errors), so for those, and for any code not in the table,
   the description decides.
3. Anything still unclassified falls back on the HTTP status; a command that failed inside a
   ``batch`` has no status of its own (the batch itself is a 200, portal.md#batch) and so lands on
   :class:`InvalidRequestError`.

Nothing here raises: odd input (``None``, numbers, dicts) is coerced to text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

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

__all__ = ["ERROR_CLASSES", "error_for", "oauth_error_for"]

# Keys are lower case; lookups lower-case the code first (docs/portal.md#errors).
_TABLE: dict[str, type[ApiError]] = {
    # --- the system error catalogue (portal.md#errors; D _includes/system-errors.md) ---
    "internal_server_error": ServerError,
    "error_unexpected_answer": ServerError,
    # Refused before execution, so safe to resend (portal.md#request-rate-leaky-bucket).
    "query_limit_exceeded": QueryLimitExceededError,
    "error_batch_method_not_allowed": InvalidRequestError,
    "error_batch_length_exceeded": InvalidRequestError,
    "no_auth_found": AuthError,
    # Also the OAuth server's invalid_request (portal.md#oauth): same code once case is ignored.
    "invalid_request": InvalidRequestError,
    # A manual block by support, not transient: never retried even though it is a 503
    # (portal.md#request-rate-leaky-bucket).
    "overload_limit": OverloadError,
    "access_denied": AccessDeniedError,
    "invalid_credentials": AccessDeniedError,
    "error_manifest_is_not_available": NotFoundError,
    "insufficient_scope": AccessDeniedError,
    # The only auth error a refresh cures (portal.md#oauth).
    "expired_token": TokenExpiredError,
    "user_access_error": AccessDeniedError,
    # 500 in the docs, 410 in PY (portal.md#where-the-sources-disagree); either way the portal is
    # gone, not the request at fault.
    "portal_deleted": ServerError,
    # --- more codes (portal.md#errors) ---
    # The method's operating budget is spent; refused before execution
    # (portal.md#operating-time-per-method).
    "operation_time_limit": OperationTimeLimitError,
    "method_confirm_waiting": AuthError,
    "method_confirm_denied": AccessDeniedError,
    "wrong_auth_type": WrongAuthTypeError,
    # Not TokenExpiredError: the token is unknown rather than expired (PY "Unable to get
    # application by token"). JS does refresh on it (portal.md#errors); that choice is the
    # session's.
    "invalid_token": AuthError,
    "authorization_error": AuthError,
    "application_not_found": AuthError,
    "error_oauth": AuthError,
    "not_installed": AuthError,
    "payment_required": AuthError,
    "error_method_not_found": MethodNotFoundError,
    "error_event_not_found": NotFoundError,
    # --- docgen codes with a real name (portal.md#document-generator-errors) ---
    "docgen_access_error": AccessDeniedError,
    "docgen_limit_error": DocumentLimitError,
    # Non-CRM docgen pages (portal.md#document-generator-errors).
    "bx_empty_required": InvalidRequestError,
    "bx_error": InvalidRequestError,
    # --- OAuth server codes (portal.md#oauth; D settings/oauth/error-codes.md, PY oauth.py) ---
    # Only the authorization server sends these; a failed token request is final.
    "invalid_grant": OAuthError,
    "invalid_client": OAuthError,
    "wrong_client": OAuthError,
    # Grouped with insufficient_scope by the docs (portal.md#oauth): a rights problem.
    "invalid_scope": AccessDeniedError,
    # --- further codes from PY's catalogue and JS's hard codes (fixtures/sdks/) ---
    "not_found": NotFoundError,
    "error_entity_not_found": NotFoundError,
    "access_error": AccessDeniedError,
    "allowed_only_intranet_user": AccessDeniedError,
    "invalid_arg_value": InvalidRequestError,
}

#: Read-only view of the code table (lower-case code -> class); codes absent from it are
#: classified by description, then by HTTP status.
ERROR_CLASSES: Mapping[str, type[ApiError]] = MappingProxyType(_TABLE)

# Descriptions that classify the docgen's "0" / "100" / "" codes
# (docs/portal.md#document-generator-errors). Checked in this order, so "Access denied: ... not
# found" counts as a rights problem.
_BY_DESCRIPTION: tuple[tuple[re.Pattern[str], type[ApiError]], ...] = (
    # DOCGEN_LIMIT_ERROR's text; matched on its own in case the code comes back empty.
    (re.compile(r"maximum count of documents has been reached"), DocumentLimitError),
    # "You do not have permissions to view documents / modify templates / modify settings".
    (re.compile(r"\bdo not have permissions?\b|\baccess denied\b"), AccessDeniedError),
    # "Document not found", "Template not found", "Region not found".
    (re.compile(r"\bnot found\b"), NotFoundError),
    # Bitrix's controller auto-wiring says this when it cannot load the object for the id it was
    # given: numerator.get/update/delete with an unknown id answer "100" + this text.
    (re.compile(r"^could not construct parameter\b"), NotFoundError),
)


def _text(value: object) -> str:
    """Coerce a wire value to text; ``None`` becomes ``""`` so it never reads as ``"None"``."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _by_status(status: int | None) -> type[ApiError]:
    """The fallback when neither the code nor the description says what happened."""
    if status == 401:
        return AuthError
    if status == 403:
        return AccessDeniedError
    if status == 404:
        return NotFoundError
    if status is not None and 500 <= status <= 599:
        return ServerError
    # 400 (every docgen error, portal.md#document-generator-errors), None (a command inside a batch)
    # and anything else.
    return InvalidRequestError


def _classify(code: str, description: str, status: int | None) -> type[ApiError]:
    known = _TABLE.get(code.strip().lower())
    if known is not None:
        return known
    normalized = description.strip().lower()
    for pattern, cls in _BY_DESCRIPTION:
        if pattern.search(normalized):
            return cls
    return _by_status(status)


def error_for(
    code: str,
    description: str = "",
    *,
    status: int | None = None,
    method: str | None = None,
    request_id: str | None = None,
) -> ApiError:
    """Map a portal error to the right ApiError subclass instance.

    Args:
        code: the ``error`` value as sent; compared case-insensitively and kept as sent.
            Non-strings are coerced with ``str()`` (``None`` becomes ``""``).
        description: the ``error_description``; ``None`` becomes ``""``.
        status: the HTTP status, or ``None`` for a command inside a ``batch``. Advisory only: a
            known code wins over it.
        method: the REST method that failed, when known.
        request_id: the portal's request id (``x-bitrix-ri``), when the reply had one.

    Returns:
        An instance (not raised) of the matching :class:`ApiError` subclass.
    """
    code_text = _text(code)
    description_text = _text(description)
    status_value = status if isinstance(status, int) and not isinstance(status, bool) else None
    cls = _classify(code_text, description_text, status_value)
    return cls(
        code_text, description_text, status=status_value, method=method, request_id=request_id
    )


def oauth_error_for(code: str, description: str = "", *, status: int | None = None) -> OAuthError:
    """Errors from the OAuth server (/oauth/token/): always OAuthError.

    Whatever the code (``invalid_grant``, ``invalid_client``, ``wrong_client`` with HTTP 200,
    ``PAYMENT_REQUIRED``...), a failed token request means the stored grant is unusable and the
    user must authorize again; it is never retried (docs/portal.md#oauth).

    Args:
        code: the ``error`` value as sent; non-strings are coerced with ``str()``.
        description: the ``error_description``, if any.
        status: the HTTP status of the token response.

    Returns:
        An :class:`OAuthError` instance (not raised).
    """
    status_value = status if isinstance(status, int) and not isinstance(status, bool) else None
    return OAuthError(_text(code), _text(description), status=status_value)
