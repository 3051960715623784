"""Asyncio-native client for the Bitrix24 CRM Document Generator.

Start with :class:`DocgenClient` (``from_webhook`` or ``from_oauth``) inside ``async with``;
:mod:`bitrix_docgen_async.testing` has a fake portal for tests and demos.
"""

from bitrix_docgen_async._version import __version__
from bitrix_docgen_async.auth import OAuthAuth, OAuthTokens, WebhookAuth
from bitrix_docgen_async.batch import Batch, BatchCall
from bitrix_docgen_async.client import DocgenClient
from bitrix_docgen_async.core.ratelimit import OperatingBudget, RateLimit
from bitrix_docgen_async.core.retry import RetryPolicy
from bitrix_docgen_async.errors import (
    AccessDeniedError,
    ApiError,
    AuthError,
    BitrixError,
    BitrixTimeoutError,
    ClientStateError,
    CommandSkippedError,
    ConnectError,
    DocumentLimitError,
    DownloadError,
    InvalidRequestError,
    LimiterUnavailableError,
    MethodNotFoundError,
    NotFoundError,
    OAuthError,
    OperationTimeLimitError,
    OutcomeUnknownError,
    OverloadError,
    PollTimeoutError,
    QueryLimitExceededError,
    RateLimitedError,
    ResponseError,
    ServerError,
    TokenExpiredError,
    TransportError,
    WrongAuthTypeError,
)
from bitrix_docgen_async.limiter import Limiter, LimiterBackend, MemoryBackend
from bitrix_docgen_async.session import ClientStats, CommandResult
from bitrix_docgen_async.transport import Timeouts

__all__ = [
    "AccessDeniedError",
    "ApiError",
    "AuthError",
    "Batch",
    "BatchCall",
    "BitrixError",
    "BitrixTimeoutError",
    "ClientStateError",
    "ClientStats",
    "CommandResult",
    "CommandSkippedError",
    "ConnectError",
    "DocgenClient",
    "DocumentLimitError",
    "DownloadError",
    "InvalidRequestError",
    "Limiter",
    "LimiterBackend",
    "LimiterUnavailableError",
    "MemoryBackend",
    "MethodNotFoundError",
    "NotFoundError",
    "OAuthAuth",
    "OAuthError",
    "OAuthTokens",
    "OperatingBudget",
    "OperationTimeLimitError",
    "OutcomeUnknownError",
    "OverloadError",
    "PollTimeoutError",
    "QueryLimitExceededError",
    "RateLimit",
    "RateLimitedError",
    "ResponseError",
    "RetryPolicy",
    "ServerError",
    "Timeouts",
    "TokenExpiredError",
    "TransportError",
    "WebhookAuth",
    "WrongAuthTypeError",
    "__version__",
]
