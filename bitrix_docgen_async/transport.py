"""The only user of ``aiohttp.ClientSession``: send one request, return status, headers, bytes.

Nothing here logs or raises a URL: webhook URLs carry the secret code in their path, OAuth token
requests carry the client secret and refresh token in their query, and ``*Machine`` URLs carry
tokens (protocol.md §8.6). Errors name the host and the failure kind only.
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
from yarl import URL

from bitrix_docgen_async._version import __version__
from bitrix_docgen_async.errors import (
    BitrixTimeoutError,
    ClientStateError,
    ConnectError,
    TransportError,
)

__all__ = ["AiohttpTransport", "HttpResponse", "Timeouts", "Transport"]

log = logging.getLogger("bitrix_docgen_async.transport")

USER_AGENT = f"bitrix_docgen_async/{__version__}"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 3


@attrs.frozen
class Timeouts:
    """Client-side timeouts, in seconds.

    The read timeout sits *above* the portal's own 60 s cut-off (protocol.md §1.2), so that the
    portal, not the client, ends a slow call: a client that gives up first and retries a
    ``document.add`` that is still rendering creates a duplicate.
    """

    connect: float = 10.0
    read: float = 90.0


@attrs.frozen
class HttpResponse:
    """What came back: the status, the headers, the whole body, and the URL finally used."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL: the only part of it that is safe to show."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _failure(verb: str, host: str, exc: BaseException) -> TransportError:
    """Our error for an aiohttp failure, naming only the kind and the host.

    aiohttp's messages can contain the URL (and so a webhook code or a token).
    """
    if isinstance(exc, TimeoutError):
        return BitrixTimeoutError(f"{verb} to {host}: no complete response in time")
    if isinstance(exc, aiohttp.ClientConnectorError):
        # Refused or unresolvable: the request never left, whatever it was.
        return ConnectError(f"{verb} to {host} failed: {type(exc).__name__}")
    return TransportError(f"{verb} to {host} failed: {type(exc).__name__}")


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
        """POST a REST call or ``batch``; follow a moved portal."""

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
        timeouts: connect and read timeouts.
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
            total=None, connect=timeouts.connect, sock_read=timeouts.read
        )
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
        blindly would turn the POST into a GET and lose the body (protocol.md §1.1).
        """
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }
        for _ in range(_MAX_REDIRECTS + 1):
            response = await self._send("POST", url, data=body, headers=headers)
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or not location:
                return response
            new_url = str(URL(url).join(URL(location)))
            log.info("portal moved: %s -> %s", origin_of(url), origin_of(new_url))
            url = new_url
        raise TransportError(f"too many redirects from {origin_of(url)}")

    async def get(self, url: str, params: Mapping[str, str] | None = None) -> HttpResponse:
        """GET ``url`` (used for the OAuth token endpoint)."""
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        return await self._send("GET", url, params=params, headers=headers)

    async def download(
        self, url: str, file: BinaryIO, headers: Mapping[str, str], *, chunk_size: int = 1 << 16
    ) -> tuple[int, Mapping[str, str]]:
        """GET ``url`` and stream a 200 body into ``file`` chunk by chunk (memory stays flat).

        Returns the status and headers; the body of any other status is read and dropped.
        """
        host = origin_of(url)
        failure: TransportError | None = None
        status, head = 0, {}
        try:
            async with self.session.get(url, headers=dict(headers), timeout=self._timeout) as reply:
                status, head = reply.status, dict(reply.headers)
                if status == 200:
                    async for chunk in reply.content.iter_chunked(chunk_size):
                        file.write(chunk)
                else:
                    await reply.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            failure = _failure("GET", host, exc)
        if failure is not None:
            raise failure
        log.debug("GET %s (download) -> %d", host, status)
        return status, head

    async def _send(self, verb: str, url: str, **kwargs: Any) -> HttpResponse:
        started = time.perf_counter()
        host = origin_of(url)
        failure: TransportError | None = None
        try:
            async with self.session.request(
                verb, url, allow_redirects=False, timeout=self._timeout, **kwargs
            ) as response:
                data = await response.read()
                result = HttpResponse(response.status, dict(response.headers), data, url)
        except (TimeoutError, aiohttp.ClientError) as exc:
            failure = _failure(verb, host, exc)
        if failure is not None:
            # Raised outside the except block so that no __context__ carries the URL along.
            raise failure
        log.debug(
            "%s %s -> %d, %d bytes in %.1f ms",
            verb,
            host,
            result.status,
            len(data),
            (time.perf_counter() - started) * 1000,
        )
        return result
