"""The only user of ``aiohttp.ClientSession``: send one request, return status, headers, bytes.

Nothing here logs or raises a URL: webhook URLs carry the secret code in their path, OAuth token
requests carry the client secret and refresh token in their query, and ``*Machine`` URLs carry
tokens (docs/portal.md#machine-urls-and-downloads). Errors name the host and the failure kind only.

Bounds, so that a misbehaving server (or a man in the middle) cannot hold a call or the memory:

* a redirect is followed only as :mod:`~bitrix_docgen_async.core.redirects` allows (https, or
  loopback to loopback for a local test portal), at most three times;
* a reply body is read in chunks and given up past ``Timeouts.max_reply_bytes`` once decoded
  (a gzip bomb stops at the cap, not at the end of its expansion);
* every request has a total deadline, ``Timeouts.total``, besides the read timeout between two
  chunks, so a reply dripping a byte at a time ends at the deadline too. Downloads stream to disk
  and have no total deadline (a large file on a slow line takes as long as it takes); the read
  timeout still bounds each chunk.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from bitrix_docgen_async._version import __version__
from bitrix_docgen_async.core.redirects import REDIRECT_STATUSES, follow_redirect, origin_of
from bitrix_docgen_async.errors import (
    BitrixError,
    BitrixTimeoutError,
    ClientStateError,
    ConnectError,
    RedirectError,
    ResponseError,
    TransportError,
)

__all__ = ["AiohttpTransport", "HttpResponse", "Timeouts", "Transport", "origin_of"]

log = logging.getLogger("bitrix_docgen_async.transport")

USER_AGENT = f"bitrix_docgen_async/{__version__}"
_MAX_REDIRECTS = 3
#: Chunks a reply body is read in; the cap is checked after each one.
_CHUNK = 1 << 16
#: The default cap on a decoded reply: docgen replies are kilobytes; a batch of 50 lists of 50
#: rows with every field stays well under a few MiB.
DEFAULT_MAX_REPLY_BYTES = 64 << 20


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"Timeouts.{attribute.name} must be a number > 0")


@attrs.frozen
class Timeouts:
    """Client-side bounds on one HTTP request: timeouts in seconds, and the reply's size.

    The read timeout sits *above* the portal's own 60 s cut-off (docs/portal.md#request-time-out),
    so that the
    portal, not the client, ends a slow call: a client that gives up first and retries a
    ``document.add`` that is still rendering creates a duplicate. The total deadline sits above
    both, so it only ends a reply that keeps trickling in.

    Attributes:
        connect: to get a connection (from the pool, or a new one).
        read: the longest silence between two chunks of the reply.
        total: the whole request, from connecting to the last byte of the reply (not used for
            file downloads, which stream to disk). A reply still arriving at the deadline
            raises :class:`~bitrix_docgen_async.BitrixTimeoutError`.
        max_reply_bytes: the largest reply body (after gzip/deflate decoding) read into memory;
            a larger one raises :class:`~bitrix_docgen_async.ResponseError` (not for file
            downloads, which stream to disk).
    """

    connect: float = attrs.field(default=10.0, validator=_positive)
    read: float = attrs.field(default=90.0, validator=_positive)
    total: float = attrs.field(default=180.0, validator=_positive)
    max_reply_bytes: int = attrs.field(default=DEFAULT_MAX_REPLY_BYTES, validator=_positive)


@attrs.frozen
class HttpResponse:
    """What came back: the status, the headers, the whole body, and the URL finally used.

    ``headers`` compares names case-insensitively (``headers["x-bitrix-ri"]``).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


def _address(url: str) -> str:
    """``host:port`` of a URL (the default port filled in): safe to show, unlike the path."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unreadable address>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port or (443 if parts.scheme == 'https' else 80)}"


def _connect_reason(exc: aiohttp.ClientConnectorError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "TLS certificate rejected"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "TLS handshake failed"
    dns_error = getattr(aiohttp, "ClientConnectorDNSError", None)  # aiohttp >= 3.10
    if dns_error is not None and isinstance(exc, dns_error):
        return "cannot resolve the host"
    if isinstance(exc.os_error, ConnectionRefusedError):
        return "connection refused"
    return "cannot connect"


def _failure(verb: str, url: str, exc: BaseException) -> TransportError:
    """Our error for an aiohttp failure, naming only the kind and the host.

    aiohttp's messages can contain the URL (and so a webhook code or a token).
    """
    host = origin_of(url)
    if isinstance(exc, aiohttp.ClientConnectorError):
        # Refused, unresolvable or a failed TLS handshake: the request never left.
        return ConnectError(_address(url), reason=_connect_reason(exc))
    if isinstance(exc, TimeoutError):
        return BitrixTimeoutError(f"{verb} to {host}: no complete response in time")
    return TransportError(f"{verb} to {host} failed: {type(exc).__name__}")


def _too_large(status: int, limit: int) -> ResponseError:
    return ResponseError(
        f"the reply is too large: over {limit} bytes (Timeouts.max_reply_bytes)",
        status=status,
        detail=("too large",),
    )


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The decoded body, or ``None`` (the connection closed) once it grows past ``limit``.

    aiohttp inflates gzip/deflate as the chunks are read, so the cap holds for the decoded size
    and a compression bomb costs at most ``limit`` plus one chunk.
    """
    declared = response.content_length
    if declared is not None and declared > limit and not response.headers.get("Content-Encoding"):
        response.close()
        return None
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            # Closed, not released: the rest of the body must not be read into the pool.
            response.close()
            return None
    return bytes(body)


def _headers(response: aiohttp.ClientResponse) -> Mapping[str, str]:
    return CIMultiDictProxy(CIMultiDict(response.headers))


class Transport(Protocol):
    """What the session, auth and downloads need from HTTP (the seam tests replace).

    :class:`AiohttpTransport` is the implementation; a test passes any object with these.
    """

    user_agent: str

    async def open(self) -> None:
        """Get ready to send (inside the running event loop)."""

    async def close(self) -> None:
        """Release what :meth:`open` acquired."""

    async def post_json(self, url: str, payload: Mapping[str, Any]) -> HttpResponse:
        """POST a JSON body; follow a moved portal over https only."""

    async def post_form(self, url: str, body: bytes) -> HttpResponse:
        """POST a REST call or ``batch`` as a form body; follow a moved portal over https only."""

    async def get(self, url: str, params: Mapping[str, str] | None = None) -> HttpResponse:
        """GET (the OAuth token endpoint)."""

    async def download(
        self, url: str, file: BinaryIO, headers: Mapping[str, str], *, chunk_size: int = 1 << 16
    ) -> tuple[int, Mapping[str, str]]:
        """Stream a 200 body into ``file``; return the status and headers."""


class AiohttpTransport:
    """Owns (or borrows) one ``aiohttp.ClientSession``.

    Args:
        session: a session of the caller's; it is used as is and never closed here.
        timeouts: connect, read and total timeouts, and the cap on a reply's size.
        user_agent: sent on every request (the docs ask for a meaningful one).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        timeouts: Timeouts = Timeouts(),
        user_agent: str = USER_AGENT,
    ) -> None:
        self._session = session
        self._owned = False
        self._timeout = aiohttp.ClientTimeout(
            total=timeouts.total, connect=timeouts.connect, sock_read=timeouts.read
        )
        # Downloads stream to disk: no total deadline, only the silence between chunks.
        self._download_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeouts.connect, sock_read=timeouts.read
        )
        self._max_reply = timeouts.max_reply_bytes
        self.user_agent = user_agent

    async def open(self) -> None:
        """Create the session unless the caller supplied one."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._owned = True

    async def close(self) -> None:
        """Close the session if this transport created it."""
        if self._owned and self._session is not None:
            await self._session.close()
        if self._owned:
            self._session = None
            self._owned = False

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open session; raises ClientStateError before :meth:`open`."""
        if self._session is None or self._session.closed:
            raise ClientStateError("the client is not open: use it inside 'async with'")
        return self._session

    async def post_json(self, url: str, payload: Mapping[str, Any]) -> HttpResponse:
        """POST ``payload`` as JSON. A redirect to a new portal host is re-sent as the same POST.

        Bitrix24 answers calls to a portal's old address with a 302 to the new one; following it
        blindly would turn the POST into a GET and lose the body
        (docs/portal.md#addressing-and-calls).

        Raises:
            RedirectError: a redirect to plain http or to another host without https, or more
                than three redirects; nothing was sent to the target.
            ResponseError: the reply is larger than ``Timeouts.max_reply_bytes``.
            TransportError: no response (``ConnectError``: nothing sent;
                ``BitrixTimeoutError``: past the read timeout or the total deadline).
        """
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }
        return await self._post(url, body, headers)

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        """POST ``body``; a redirect to a new portal host is re-sent as the same POST."""
        for _ in range(_MAX_REDIRECTS + 1):
            response = await self._send("POST", url, data=body, headers=headers)
            location = response.headers.get("Location")
            if response.status not in REDIRECT_STATUSES or not location:
                return response
            new_url = follow_redirect(url, location)  # RedirectError: refused, nothing sent
            log.info("portal moved: %s -> %s", origin_of(url), origin_of(new_url))
            url = new_url
        raise RedirectError(origin_of(url), None, f"more than {_MAX_REDIRECTS} redirects")

    async def post_form(self, url: str, body: bytes) -> HttpResponse:
        """POST an ``application/x-www-form-urlencoded`` ``body`` (a REST call or a ``batch``).

        Bitrix24 reads a form body with PHP's ``parse_str``, the same way it reads a batch
        command's query, so lone and batched calls share one wire form
        (docs/portal.md#request-time-out).
        Redirects are handled as by :meth:`post_json`.
        """
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }
        return await self._post(url, body, headers)

    async def get(self, url: str, params: Mapping[str, str] | None = None) -> HttpResponse:
        """GET ``url`` (used for the OAuth token endpoint). A redirect is returned, not followed.

        The token request's query holds the client secret and the refresh token: it is never
        re-sent anywhere else.
        """
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        return await self._send("GET", url, params=params, headers=headers)

    async def open_get(self, url: str, headers: Mapping[str, str]) -> aiohttp.ClientResponse:
        """Start one GET of ``url`` and return the open response (redirects not followed).

        For ``documents.open``, which hands the body on chunk by chunk: the caller reads and
        closes the response. Timeouts are the downloads' (connect and read, no total).

        Raises:
            TimeoutError, aiohttp.ClientError: as aiohttp raises them (the caller maps them).
        """
        return await self.session.get(
            url, headers=dict(headers), allow_redirects=False, timeout=self._download_timeout
        )

    async def download(
        self, url: str, file: BinaryIO, headers: Mapping[str, str], *, chunk_size: int = 1 << 16
    ) -> tuple[int, Mapping[str, str]]:
        """GET ``url`` and stream a 200 body into ``file`` chunk by chunk (memory stays flat).

        Redirects are followed under the same rule as calls (https, or loopback to loopback), at
        most three times: a ``*Machine`` URL's redirect target may carry a token too.

        Returns:
            The status and headers; the body of any other status is dropped unread past
            ``Timeouts.max_reply_bytes``.

        Raises:
            RedirectError: a redirect that is not followed.
            TransportError: no complete response.
        """
        failure: BitrixError | None = None
        status: int = 0
        head: Mapping[str, str] = {}
        for _ in range(_MAX_REDIRECTS + 1):
            location: str | None = None
            try:
                async with self.session.get(
                    url,
                    headers=dict(headers),
                    allow_redirects=False,
                    timeout=self._download_timeout,
                ) as reply:
                    status, head = reply.status, _headers(reply)
                    location = head.get("Location") if status in REDIRECT_STATUSES else None
                    if status == 200:
                        async for chunk in reply.content.iter_chunked(chunk_size):
                            file.write(chunk)
                    else:
                        await _read_capped(reply, self._max_reply)
            except (TimeoutError, aiohttp.ClientError) as exc:
                failure = _failure("GET", url, exc)
            if failure is not None:
                # Raised outside the except block so that no __context__ carries the URL along.
                raise failure
            if not location:
                if log.isEnabledFor(logging.DEBUG):  # (origin_of parses the URL)
                    log.debug("GET %s (download) -> %d", origin_of(url), status)
                return status, head
            new_url = follow_redirect(url, location)  # RedirectError: refused
            log.debug("download redirected: %s -> %s", origin_of(url), origin_of(new_url))
            url = new_url
        raise RedirectError(origin_of(url), None, f"more than {_MAX_REDIRECTS} redirects")

    async def _send(self, verb: str, url: str, **kwargs: Any) -> HttpResponse:
        started = time.perf_counter()
        failure: BitrixError | None = None
        try:
            async with self.session.request(
                verb, url, allow_redirects=False, timeout=self._timeout, **kwargs
            ) as response:
                data = await _read_capped(response, self._max_reply)
                if data is None:
                    failure = _too_large(response.status, self._max_reply)
                else:
                    result = HttpResponse(response.status, _headers(response), data, url)
        except (TimeoutError, aiohttp.ClientError) as exc:
            failure = _failure(verb, url, exc)
        if failure is not None:
            # Raised outside the except block so that no __context__ carries the URL along.
            raise failure
        if log.isEnabledFor(logging.DEBUG):  # (origin_of parses the URL)
            log.debug(
                "%s %s -> %d, %d bytes in %.1f ms",
                verb,
                origin_of(url),
                result.status,
                len(result.body),
                (time.perf_counter() - started) * 1000,
            )
        return result
