"""Asyncio-native client for the Bitrix24 CRM Document Generator.

Start with :class:`DocgenClient` (``from_webhook`` or ``from_oauth``) inside ``async with``;
:mod:`bitrix_docgen_async.testing` has a fake portal for tests and demos.
"""

import importlib

from bitrix_docgen_async._version import __version__
from bitrix_docgen_async.auth import OAuthAuth, OAuthTokens, WebhookAuth
from bitrix_docgen_async.batch import Batch, BatchCall
from bitrix_docgen_async.client import DocgenClient
from bitrix_docgen_async.core.pdf import PollSchedule
from bitrix_docgen_async.core.ratelimit import OperatingBudget, RateLimit
from bitrix_docgen_async.core.retry import RetryPolicy
from bitrix_docgen_async.env import EnvConfigError
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
    InternalError,
    InvalidEntityError,
    InvalidRequestError,
    JournalError,
    LimiterUnavailableError,
    MethodNotFoundError,
    NotFoundError,
    OAuthError,
    OfflineEventsUnavailableError,
    OperationTimeLimitError,
    OutcomeUnknownError,
    OverloadError,
    PollTimeoutError,
    QueryLimitExceededError,
    RateLimitedError,
    RedirectError,
    ResponseError,
    ServerError,
    StorageError,
    TokenExpiredError,
    TransportError,
    UnknownFieldsError,
    WrongAuthTypeError,
)
from bitrix_docgen_async.limiter import LimiterBackend
from bitrix_docgen_async.options import ClientOptions
from bitrix_docgen_async.session import ClientStats
from bitrix_docgen_async.streaming import FileStream
from bitrix_docgen_async.tracing import RequestRecord, ResponseRecord
from bitrix_docgen_async.transport import Timeouts
from bitrix_docgen_async.workflows.bulk import GenerationResult, Progress

__all__ = [
    "AccessDeniedError",
    "ApiError",
    "AuthError",
    "Batch",
    "BatchCall",
    "BitrixError",
    "BitrixTimeoutError",
    "ClientOptions",
    "ClientStateError",
    "ClientStats",
    "CommandSkippedError",
    "ConnectError",
    "DocgenClient",
    "DocumentLimitError",
    "DownloadError",
    "EnvConfigError",
    "FileStream",
    "GenerationResult",
    "InternalError",
    "InvalidEntityError",
    "InvalidRequestError",
    "JournalError",
    "LimiterBackend",
    "LimiterUnavailableError",
    "MethodNotFoundError",
    "NotFoundError",
    "OAuthAuth",
    "OAuthError",
    "OAuthTokens",
    "OfflineEventsUnavailableError",
    "OperatingBudget",
    "OperationTimeLimitError",
    "OutcomeUnknownError",
    "OverloadError",
    "PollSchedule",
    "PollTimeoutError",
    "Progress",
    "QueryLimitExceededError",
    "RateLimit",
    "RateLimitedError",
    "RedirectError",
    "RequestRecord",
    "ResponseError",
    "ResponseRecord",
    "RetryPolicy",
    "ServerError",
    "StorageError",
    "Timeouts",
    "TokenExpiredError",
    "TransportError",
    "UnknownFieldsError",
    "WebhookAuth",
    "WrongAuthTypeError",
    "__version__",
]

# Engine internals: not part of the public surface (not in __all__), but still importable from
# here for code written against earlier versions. Import them from their modules.
_INTERNAL = {
    "Limiter": "bitrix_docgen_async.limiter",
    "MemoryBackend": "bitrix_docgen_async.limiter",
    "CommandResult": "bitrix_docgen_async.session",
}


def __getattr__(name: str) -> object:
    module = _INTERNAL.get(name)
    if module is None:
        raise AttributeError(f"module 'bitrix_docgen_async' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
