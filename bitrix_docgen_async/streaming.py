"""``documents.open(doc, kind)``: a document's file as a stream of chunks, no temporary file.

For a service that hands a PDF on to its own client. Paced and retried like ``download``
(``download.py``): each GET of a ``*Machine`` URL is a REST request and takes a request token
(docs/portal.md#machine-urls-and-downloads); a stale URL (401/403/404) is replaced by a fresh
``document.get`` (up to 3 times); a 5xx or a failure before the answer is retried; and the first
bytes are checked against the kind asked for (a 200 carrying an error envelope or an HTML login
page raises :class:`DownloadError` before the consumer sees a byte). Once chunks flow, a
failure is raised to the consumer: what it already passed on cannot be taken back.

The machine URL is a secret (it carries its own authorisation): it never appears in a log or an
error, nor does a redirect target.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp

from bitrix_docgen_async.core.filetypes import ENVELOPE_BYTES, HEAD_BYTES, Kind, check_body
from bitrix_docgen_async.core.pdf import PdfState
from bitrix_docgen_async.core.redirects import REDIRECT_STATUSES, follow_redirect, origin_of
from bitrix_docgen_async.errors import (
    ClientStateError,
    DownloadError,
    RedirectError,
    TransportError,
)
from bitrix_docgen_async.models import Document
from bitrix_docgen_async.transport import AiohttpTransport, _failure
from bitrix_docgen_async.workflows.download import (
    _REFRESHES,
    _STALE,
    _url,
    retry_fetch,
    server_failure,
)
from bitrix_docgen_async.workflows.polling import look

if TYPE_CHECKING:
    from bitrix_docgen_async.client import DocgenClient

__all__ = ["FileStream", "open_file"]

log = logging.getLogger("bitrix_docgen_async.streaming")

_MAX_REDIRECTS = 3
#: Chunks handed to the consumer: big enough to be cheap, small enough to keep memory flat.
DEFAULT_CHUNK = 1 << 16


class FileStream:
    """An open file of a document: ``async for chunk in stream`` yields its bytes.

    Attributes:
        document: the document (with the URLs used, after any refresh).
        kind: ``"pdf"``, ``"docx"`` or ``"image"``.
        content_type: the ``Content-Type`` the portal sent, or None.
        length: the ``Content-Length`` the portal sent (bytes), or None when it did not say.
        extension: the file's extension, from its own first bytes (``pdf``, ``docx``, ``png``...).
    """

    def __init__(
        self,
        document: Document,
        kind: Kind,
        extension: str,
        head: bytes,
        response: aiohttp.ClientResponse,
        chunk_size: int,
    ) -> None:
        self.document = document
        self.kind = kind
        self.extension = extension
        self.content_type: str | None = response.headers.get("Content-Type")
        self.length: int | None = response.content_length
        self._head = head
        self._response = response
        self._chunk_size = chunk_size
        self._started = False

    def __repr__(self) -> str:
        return f"FileStream(document={self.document.id}, kind={self.kind!r}, length={self.length})"

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise RuntimeError("a FileStream can be read once")
        self._started = True
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        if self._head:
            yield self._head
        url = str(self._response.url)
        failure: TransportError | None = None
        try:
            async for chunk in self._response.content.iter_chunked(self._chunk_size):
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            failure = _failure("GET", url, exc)
        if failure is not None:
            raise failure  # outside the except block: no __context__ carries the URL

    def close(self) -> None:
        """Give the connection back when the body was read whole, else drop it."""
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


async def _read_head(response: aiohttp.ClientResponse, limit: int) -> bytes:
    head = b""
    while len(head) < limit:
        chunk = await response.content.read(limit - len(head))
        if not chunk:
            break
        head += chunk
    return head


async def _get(client: DocgenClient, url: str) -> aiohttp.ClientResponse:
    """One paced GET of a machine URL, redirects followed under the transport's rule."""
    session = client.session
    transport = session.transport
    if not isinstance(transport, AiohttpTransport):
        # Streaming hands aiohttp's open response on; a replaced transport has none.
        raise ClientStateError("documents.open needs the client's aiohttp transport")
    headers = {
        "User-Agent": transport.user_agent,
        "Accept": "*/*",
        "Accept-Language": "en-US,en;q=0.9",
        "Referer": client.auth.origin + "/",
    }
    # One request token per attempt, as download() takes (the portal's bucket counts machine
    # URL requests: docs/portal.md#machine-urls-and-downloads).
    await session.limiter.acquire()
    for _ in range(_MAX_REDIRECTS + 1):
        failure: TransportError | None = None
        response: aiohttp.ClientResponse | None = None
        try:
            send = functools.partial(transport.open_get, url, headers)
            response = await session.sender.tracer.download(url, send, lambda reply: reply.status)
        except (TimeoutError, aiohttp.ClientError) as exc:
            failure = _failure("GET", url, exc)
        if failure is not None or response is None:
            raise failure or TransportError("GET failed")
        location = response.headers.get("Location")
        if response.status not in REDIRECT_STATUSES or not location:
            client.stats.http_requests += 1
            client.stats.downloads += 1
            return response
        response.close()
        url = follow_redirect(url, location)  # RedirectError: refused
    raise RedirectError(origin_of(url), None, f"more than {_MAX_REDIRECTS} redirects")


async def _open(
    client: DocgenClient, document: Document | int, kind: Kind, chunk_size: int
) -> FileStream:
    if not isinstance(document, Document):
        document = await client.documents.get(document)
    started = client.session.limiter.clock()
    refreshes = attempts = 0
    while True:
        url = _url(document, kind)
        # The one readiness rule decides whether a PDF/image link is the current render's.
        outdated = kind != "docx" and document.pdf_state() is PdfState.PENDING
        if not url or outdated:
            if refreshes == 0:
                document, refreshes = await look(client, document.id, document.pdf_since), 1
                continue
            reason = (
                "its PDF conversion failed"
                if document.pdf_failed
                else "the update's new render is not converted yet"
                if url
                else "no file yet"
            )
            raise DownloadError(document.id, kind, reason)
        try:
            response = await _get(client, url)
        except TransportError as exc:
            if not await retry_fetch(client, exc, document.id, kind, attempts, started):
                raise DownloadError(document.id, kind, str(exc)) from None
            attempts += 1
            continue
        status = response.status
        if status == 200:
            try:
                head = await _read_head(response, HEAD_BYTES)
                if head.lstrip().startswith(b"{"):
                    head += await _read_head(response, ENVELOPE_BYTES - len(head))
                extension = check_body(kind, head[:HEAD_BYTES], head)
            except ValueError as exc:
                response.close()
                raise DownloadError(document.id, kind, str(exc), status) from None
            except (TimeoutError, aiohttp.ClientError) as exc:
                response.close()
                broke = _failure("GET", url, exc)
                if not await retry_fetch(client, broke, document.id, kind, attempts, started):
                    raise DownloadError(document.id, kind, "the body broke off", status) from None
                attempts += 1
                continue
            except BaseException:
                response.close()
                raise
            log.debug(
                "document %d: %s opened (%s bytes)", document.id, kind, response.content_length
            )
            return FileStream(document, kind, extension, head, response, chunk_size)
        response.close()  # an error page is not read into memory
        if status in _STALE and refreshes < _REFRESHES:
            document = await look(client, document.id, document.pdf_since)
            refreshes += 1
            continue
        if status < 500 or not await retry_fetch(
            client, server_failure(status), document.id, kind, attempts, started
        ):
            raise DownloadError(document.id, kind, "the portal refused", status)
        attempts += 1


@contextlib.asynccontextmanager
async def open_file(
    client: DocgenClient,
    document: Document | int,
    kind: Kind = "pdf",
    *,
    chunk_size: int = DEFAULT_CHUNK,
) -> AsyncIterator[FileStream]:
    """``documents.open``: an open :class:`FileStream`, closed when the block ends."""
    if kind not in ("pdf", "docx", "image"):
        raise ValueError("kind must be 'pdf', 'docx' or 'image'")
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    stream = await _open(client, document, kind, chunk_size)
    try:
        yield stream
    finally:
        stream.close()
