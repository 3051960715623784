"""The exception hierarchy.

One root, :class:`BitrixError`, and a shallow tree under it. Every class says through
``retryable`` whether the same call may simply be sent again: that is true only for refusals that
Bitrix24 makes *before* it executes anything (rate limit, operating budget), never for errors after
which the outcome of a write is unknown.

This module is pure (no I/O, no asyncio) so that ``core/`` can raise these classes. No message
built here contains a secret: callers pass only method names, codes, origins (``scheme://host``)
and the portal's descriptions after :func:`~bitrix_docgen_async.core.redact.scrub`.

Every class pickles with its message and attributes (job queues such as arq, taskiq and celery
pickle a job's error to carry it to another process): :meth:`BitrixError.__reduce__` rebuilds an
instance from its ``args`` and ``__dict__`` without calling ``__init__``, so a subclass with its
own constructor needs nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

__all__ = [
    "AccessDeniedError",
    "ApiError",
    "AuthError",
    "BitrixError",
    "BitrixTimeoutError",
    "ClientStateError",
    "CommandSkippedError",
    "ConnectError",
    "DocumentLimitError",
    "DownloadError",
    "InternalError",
    "InvalidEntityError",
    "InvalidRequestError",
    "JournalError",
    "LimiterUnavailableError",
    "MethodNotFoundError",
    "NotFoundError",
    "OAuthError",
    "OfflineEventsUnavailableError",
    "OperationTimeLimitError",
    "OutcomeUnknownError",
    "OverloadError",
    "PollTimeoutError",
    "QueryLimitExceededError",
    "RateLimitedError",
    "RedirectError",
    "ResponseError",
    "ServerError",
    "StorageError",
    "TokenExpiredError",
    "TransportError",
    "UnknownFieldsError",
    "WrongAuthTypeError",
]


E = TypeVar("E", bound=BaseException)


def restore_exception(cls: type[E], args: tuple[Any, ...], state: dict[str, Any]) -> E:
    """Rebuild an exception from its ``args`` and ``__dict__``, without calling ``__init__``.

    The default pickling of an exception calls ``cls(*args)``, which fails (or builds another
    message) for every class whose constructor takes something other than the message.
    """
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


def reduce_exception(error: BaseException) -> tuple[Any, ...]:
    """The ``__reduce__`` value that :func:`restore_exception` reverses (for any exception)."""
    return (restore_exception, (type(error), error.args, dict(error.__dict__)))


class BitrixError(Exception):
    """Root of every error this library raises."""

    #: True when sending the very same request again is safe and may succeed.
    retryable: ClassVar[bool] = False

    def __reduce__(self) -> tuple[Any, ...]:
        return reduce_exception(self)


class ClientStateError(BitrixError, RuntimeError):
    """The client was used outside ``async with`` (not opened yet, or already closed)."""


class ApiError(BitrixError):
    """The portal answered with an ``{"error", "error_description"}`` envelope.

    Attributes:
        code: the portal's error code as sent (``"0"``, ``"100"`` and ``""`` occur for docgen).
        description: the portal's ``error_description``.
        status: the HTTP status, or ``None`` for a command that failed inside a ``batch``
            (Bitrix24 reports those inside an HTTP 200).
        method: the REST method that failed, when known.
        request_id: the portal's id of the HTTP request (its ``x-bitrix-ri`` response header,
            docs/portal.md#where-the-sources-disagree), to quote to Bitrix24 support; ``None`` when
            the reply had none.
    """

    def __init__(
        self,
        code: str,
        description: str = "",
        *,
        status: int | None = None,
        method: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.code = code
        self.description = description
        self.status = status
        self.method = method
        self.request_id = request_id
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"{self.method}: " if self.method else ""
        code = self.code if self.code != "" else "<empty code>"
        status = f" (HTTP {self.status})" if self.status is not None else ""
        detail = f": {self.description}" if self.description else ""
        return f"{where}{code}{detail}{status}"


class AuthError(ApiError):
    """Authentication failed: wrong webhook code, unknown token, deactivated user."""


class TokenExpiredError(AuthError):
    """``expired_token``: the OAuth access token has expired; refresh and send again."""

    retryable = True


class WrongAuthTypeError(AuthError):
    """``WRONG_AUTH_TYPE``: the method needs application (OAuth) auth, not a webhook."""


class OAuthError(AuthError):
    """The OAuth server refused a token request (``invalid_grant``, ``invalid_client``, ...).

    A failed refresh is final: the refresh token is expired or revoked and the user must
    authorize the application again. It is never retried in a loop.
    """


class OfflineEventsUnavailableError(BitrixError):
    """The portal cannot serve offline events the way the consumer was asked to.

    Raised before any event is taken: without the ``rest_offline_extended`` feature the portal
    has no confirm mode (``clear=0`` + ``process_id``), so an event taken and then lost in a
    crash would be gone (pass ``allow_lossy=True`` to accept that); without
    ``rest_auth_connector`` there is no ``auth_connector`` (docs/portal.md#offline-events).

    Attributes:
        feature: the ``feature.get`` code that is missing.
    """

    def __init__(self, feature: str, message: str) -> None:
        super().__init__(message)
        self.feature = feature


class AccessDeniedError(ApiError):
    """The credentials are valid but lack a right or scope for this object or method."""


class NotFoundError(ApiError):
    """The object (document, template, numerator, event handler) does not exist."""


class MethodNotFoundError(NotFoundError):
    """``ERROR_METHOD_NOT_FOUND``: the portal does not know the REST method."""


class InvalidRequestError(ApiError):
    """The portal rejected the parameters (missing or malformed fields, batch misuse)."""


class DocumentLimitError(ApiError):
    """``DOCGEN_LIMIT_ERROR``: the plan's maximum count of documents has been reached."""


class RateLimitedError(ApiError):
    """A limit refused the call before it executed; sending it again later is safe.

    Attributes:
        retry_after: seconds after which the limit is expected to admit the call, when known
            (set when a call could not start within its ``queue_timeout``).
    """

    retryable = True

    def __init__(
        self,
        code: str,
        description: str = "",
        *,
        status: int | None = None,
        method: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(code, description, status=status, method=method, request_id=request_id)


class QueryLimitExceededError(RateLimitedError):
    """HTTP 503 ``QUERY_LIMIT_EXCEEDED``: the portal's request bucket is full."""


class OperationTimeLimitError(RateLimitedError):
    """HTTP 429 ``OPERATION_TIME_LIMIT``: the method spent its operating-time budget."""


class OverloadError(ApiError):
    """HTTP 503 ``OVERLOAD_LIMIT``: REST is blocked by support. Not transient, not retried."""


class ServerError(ApiError):
    """An internal error on the portal (HTTP 5xx with an error envelope)."""


class TransportError(BitrixError):
    """The request did not produce a response: connection refused, reset or dropped.

    Whether the portal executed the call is unknown, so only reads are retried after it.
    """


class ConnectError(TransportError):
    """No connection could be made: nothing was sent, so even a write may be sent again.

    Attributes:
        address: ``host:port`` that refused (never a path: it can hold a webhook code).
        attempts: how many connections were tried before giving up.
        reason: what went wrong, e.g. ``"connection refused"``.
    """

    retryable = True

    def __init__(
        self, address: str, attempts: int = 1, *, reason: str = "connection refused"
    ) -> None:
        self.address = address
        self.attempts = attempts
        self.reason = reason
        plural = "" if attempts == 1 else "s"
        super().__init__(f"{reason} to {address} after {attempts} attempt{plural}")

    def with_attempts(self, attempts: int) -> ConnectError:
        """The same failure, counted over ``attempts`` tries (the session's retries)."""
        return type(self)(self.address, attempts, reason=self.reason)


class BitrixTimeoutError(TransportError):
    """No complete response within the client's timeout."""


class RedirectError(BitrixError):
    """The portal answered with a redirect that is not followed, so nothing was sent there.

    A redirect to plain ``http`` would carry the webhook code (in the path) or the OAuth token
    (in the body) in clear text, so it is refused, as is a redirect to another host over
    anything but https (docs/portal.md#addressing-and-calls: a moved portal redirects to its new
    https address).
    The portal that redirected did not execute the call; sending it again would only be
    redirected again, so it is not retryable.

    Attributes:
        origin: ``scheme://host[:port]`` that answered with the redirect.
        target: ``scheme://host[:port]`` it pointed to, or ``None`` when it could not be read.
        reason: why it was refused.
    """

    def __init__(self, origin: str, target: str | None, reason: str) -> None:
        self.origin = origin
        self.target = target
        self.reason = reason
        where = f" to {target}" if target else ""
        super().__init__(f"refused a redirect from {origin}{where}: {reason}")


class ResponseError(BitrixError):
    """The response could not be understood: not JSON, an HTML error page, a wrong shape.

    Attributes:
        status: the HTTP status of the response.
        detail: what was wrong (for a shape mismatch, cattrs' ``transform_error`` lines).
    """

    def __init__(self, message: str, *, status: int | None = None, detail: Sequence[str] = ()):
        self.status = status
        self.detail = tuple(detail)
        super().__init__(message + (f" (HTTP {status})" if status is not None else ""))


class OutcomeUnknownError(BitrixError):
    """A non-idempotent write failed ambiguously: the portal may or may not have executed it.

    Raised instead of a blind retry, which could create a duplicate document. Reconcile (look
    the object up) before deciding to send the write again.

    Attributes:
        method: the write whose outcome is unknown.
        cause: the failure that made it ambiguous.
    """

    def __init__(self, method: str, cause: BaseException) -> None:
        self.method = method
        if not isinstance(cause, BitrixError):
            # A foreign error's text can quote a URL (aiohttp's do), and it may not pickle.
            cause = TransportError(f"{type(cause).__name__} (details withheld)")
        self.cause = cause
        super().__init__(
            f"{method}: the outcome is unknown after {type(cause).__name__}: {cause}; "
            "it was not retried, because the portal may have executed it"
        )


class CommandSkippedError(BitrixError):
    """A command of an explicit batch did not run: the batch halted at an earlier failure."""


class DownloadError(BitrixError):
    """A document's file could not be downloaded.

    Attributes:
        document_id: the document.
        kind: ``"pdf"``, ``"docx"`` or ``"image"``.
        status: the last HTTP status, if any answer came.
    """

    def __init__(self, document_id: int, kind: str, reason: str, status: int | None = None):
        self.document_id = document_id
        self.kind = kind
        self.status = status
        where = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"document {document_id}: cannot download the {kind}: {reason}{where}")


class PollTimeoutError(BitrixError):
    """Waiting for PDFs reached its deadline; ``pending`` holds what was still converting."""

    def __init__(self, pending: Sequence[Any]) -> None:
        self.pending = tuple(pending)
        super().__init__(f"{len(self.pending)} document(s) still pending at the deadline")


class LimiterUnavailableError(BitrixError):
    """The limiter's shared state (Redis) cannot be reached, so no request may be paced.

    Raised at once when Redis cannot be reached at all when the limiter is first used, and
    after ``reconnect_timeout`` seconds of waiting when it was lost mid-run. Never retryable by
    itself: the calls waiting on it have already waited. Defined here (not with the Redis
    backend) so that it can be caught without the ``redis`` extra installed.
    """


class JournalError(BitrixError):
    """A bulk run's journal cannot be used.

    It is locked by another run, belongs to another portal, template or entity type, records a
    document that is not the entity's, or the file is damaged. The message names the journal
    file and the reason, never a webhook code or token.
    """


class InvalidEntityError(BitrixError, ValueError):
    """A bulk run could not use an entity: a bad or repeated id, or values refused before sending.

    Reported in :attr:`GenerationResult.error <bitrix_docgen_async.GenerationResult.error>`;
    nothing was sent for that entity. A ``ValueError`` too, so ``except ValueError`` still
    catches it; the refused value's own error is its ``__cause__`` (not kept across pickling).
    """


class StorageError(BitrixError, OSError):
    """A bulk run could not write a file or folder on this machine (a download, its folder).

    An ``OSError`` too, with the original's ``errno``, ``strerror`` and ``filename`` when it had
    them, so ``except OSError`` still catches it.
    """

    @classmethod
    def wrapping(cls, error: OSError) -> StorageError:
        """The same failure as a library error (``__cause__`` is ``error``)."""
        wrapped = cls(*_os_error_args(error))
        wrapped.__cause__ = error
        return wrapped

    def __reduce__(self) -> tuple[Any, ...]:
        # OSError keeps ``filename`` out of ``args``: rebuild through the constructor, which
        # sets ``errno``, ``strerror`` and ``filename`` again.
        return (type(self), _os_error_args(self), dict(self.__dict__) or None)


def _os_error_args(error: OSError) -> tuple[Any, ...]:
    """The constructor arguments that give an ``OSError`` its errno, strerror and filename."""
    if error.errno is None or error.strerror is None:
        return error.args
    extra = () if error.filename is None else (error.filename,)
    return (error.errno, error.strerror, *extra)


class InternalError(BitrixError):
    """A bug in the library, met while working on one entity of a bulk run (and logged).

    The message names only the original exception's class (its text may quote anything); the
    original is the ``__cause__`` and its traceback is in the log.
    """


class UnknownFieldsError(BitrixError, ValueError):
    """``values`` name fields the template does not have (``check_values=True``).

    Raised before anything is generated. The portal itself accepts such values silently and
    renders the document without them.

    Attributes:
        template_id: the template the values were checked against.
        unknown: the value names the template has no field for, sorted.
        suggestions: for each unknown name, the closest field names the template has (maybe none).
    """

    def __init__(
        self, template_id: int, unknown: Sequence[str], suggestions: Mapping[str, Sequence[str]]
    ) -> None:
        self.template_id = template_id
        self.unknown = tuple(unknown)
        self.suggestions = {name: tuple(close) for name, close in suggestions.items()}
        parts = []
        for name in self.unknown:
            close = self.suggestions.get(name, ())
            hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
            parts.append(f"{name!r}{hint}")
        super().__init__(f"template {template_id} has no field " + ", ".join(parts))
