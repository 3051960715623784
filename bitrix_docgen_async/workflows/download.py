"""Streaming, atomic downloads of a document's .docx, PDF or preview image.

The ``*Machine`` URL is fetched as is: it carries its own authorisation, and editing it breaks
the signature (docs/portal.md#machine-urls-and-downloads). It is a secret, so it is never logged or
put in an error. The
body streams into a temporary file in the destination folder, renamed into place only when
complete, so a failed download leaves nothing behind. A stale URL (401/403/404) is refreshed (up
to 3 times) with ``document.get``; machine URLs are REST requests, so each one takes a request
token.

* The destination is always a folder (created if missing), whatever its name looks like
  (``exports/2024.01`` is a folder, not a file); the file is named after the document.
* A 200 answer is not trusted blindly: the portal (or a proxy before it) can answer 200 with a
  JSON error envelope (``{"error": "ACCESS_DENIED", ...}``) or an HTML login page, and the body
  is checked against the file type asked for (``%PDF-`` for a PDF, a zip for a .docx, an image
  signature for an image) before it may take the file's place.
* The temporary file is created like any ``open()``: with mode ``0o666`` less the umask, which
  the rename keeps. Its name carries this host, process and a random part, so runs sharing a
  folder never touch each other's temporary files (:func:`remove_stale_parts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import logging
import os
import re
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from bitrix_docgen_async._retries import wait_to_retry
from bitrix_docgen_async.core.filetypes import ENVELOPE_BYTES, HEAD_BYTES, Kind, check_body
from bitrix_docgen_async.core.pdf import PdfState
from bitrix_docgen_async.errors import DownloadError, TransportError
from bitrix_docgen_async.models import Document
from bitrix_docgen_async.workflows.polling import look

if TYPE_CHECKING:
    from bitrix_docgen_async.client import DocgenClient

__all__ = ["Downloader", "Kind", "check_body", "remove_stale_parts"]

log = logging.getLogger("bitrix_docgen_async.workflows.download")

_STALE = frozenset({401, 403, 404})
#: How often a stale URL is replaced by a fresh ``document.get`` before giving up. OAuth machine
#: URLs embed the access token, so one can go stale again if the token expires meanwhile.
_REFRESHES = 3
#: Created as ``open(path, "xb+")`` would: the kernel applies the umask to mode 0o666.
_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_PART = re.compile(r"^\.document-\d+\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]+\.part$")


def _url(document: Document, kind: Kind) -> str | None:
    if kind == "pdf":
        return document.pdf_url_machine
    if kind == "docx":
        return document.download_url_machine
    return document.image_url_machine


# Small file-system steps, kept synchronous on purpose: each is one quick syscall, cheaper
# than a hop to a thread (the chunk writes themselves are as quick).


@functools.cache
def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _open_part(folder: Path, doc_id: int) -> tuple[BinaryIO, Path]:
    """A new temporary file, created as ``open()`` would: mode 0o666 less the umask."""
    tag = f"{_host_tag()}-{os.getpid()}"
    while True:
        temp = folder / f".document-{doc_id}.{tag}-{secrets.token_hex(4)}.part"
        try:
            handle = os.open(temp, _FLAGS, 0o666)
        except FileExistsError:
            continue
        return os.fdopen(handle, "w+b"), temp


def _discard(temp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError as exc:  # EPERM: it exists, under another user
        return exc.errno == errno.EPERM
    return True


def remove_stale_parts(folder: str | os.PathLike[str]) -> int:
    """Delete the temporary files that dead processes of this host left in ``folder``.

    A temporary file belongs to a process of this host that is still running (another run
    using the same folder, or this one) is never touched, nor is any file of another host.

    Returns:
        How many files were removed.
    """
    path = Path(folder)
    if not path.is_dir():
        return 0
    host, removed = _host_tag(), 0
    for leftover in path.glob(".document-*.part"):
        match = _PART.match(leftover.name)
        if match is None or match["host"] != host:
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or _alive(pid):
            continue
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed += 1
            log.info("removed %s left by an interrupted run", leftover.name)
    return removed


class Downloader:
    """Downloads with bounded concurrency, shared by everything of one client."""

    def __init__(self, client: DocgenClient, *, concurrency: int = 8) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self._client = client
        self._slots = asyncio.Semaphore(concurrency)
        # Folders this downloader has made (or found): not made again for every file; one
        # removed meanwhile is made again when a file cannot be created in it.
        self._folders: set[Path] = set()

    async def download(
        self,
        document: Document | int,
        dest: str | os.PathLike[str],
        kind: Kind = "pdf",
        *,
        filename: str | None = None,
    ) -> Path:
        """Save one file of ``document`` in the folder ``dest``; returns its path.

        Args:
            document: a :class:`Document` (its URLs are used) or an id (fetched first).
            dest: a folder, created if missing, whatever its name looks like (a name with a
                dot, such as ``exports/2024.01``, is still a folder).
            kind: ``"pdf"``, ``"docx"`` or ``"image"``.
            filename: the file's name in ``dest``; by default ``document-{id}.{ext}``, the
                extension taken from the file's own signature for an image.

        Raises:
            DownloadError: not converted (yet), conversion failed, the portal kept refusing,
                or it answered 200 with something else than the file (an error envelope, an
                HTML login page).
        """
        if kind not in ("pdf", "docx", "image"):
            raise ValueError("kind must be 'pdf', 'docx' or 'image'")
        if filename is not None and (not filename or Path(filename).name != filename):
            raise ValueError("filename must be a plain file name")
        folder = Path(dest)
        if not isinstance(document, Document):
            document = await self._client.documents.get(document)
        refreshes = 0
        started = self._client.session.limiter.clock()
        attempts = 0
        while True:
            url = _url(document, kind)
            # After an update the PDF and image links may still be the previous render's
            # (docs/portal.md#where-the-sources-disagree): they count only once the one readiness
            # rule says READY.
            outdated = kind != "docx" and document.pdf_state() is PdfState.PENDING
            if not url or outdated:
                if refreshes == 0:
                    document, refreshes = await self._refresh(document), 1
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
                status, path = await self._fetch(document.id, kind, url, folder, filename)
            except TransportError as exc:
                if not await retry_fetch(self._client, exc, document.id, kind, attempts, started):
                    raise DownloadError(document.id, kind, str(exc)) from None
                attempts += 1
                continue
            if path is not None:
                return path
            if status in _STALE and refreshes < _REFRESHES:
                document, refreshes = await self._refresh(document), refreshes + 1
                continue
            if status < 500 or not await retry_fetch(
                self._client, server_failure(status), document.id, kind, attempts, started
            ):
                raise DownloadError(document.id, kind, "the portal refused", status)
            attempts += 1

    async def _refresh(self, document: Document) -> Document:
        """Fresh URLs: ``document.get``, or the ``document.list`` row after an update."""
        return await look(self._client, document.id, document.pdf_since)

    async def _fetch(
        self, doc_id: int, kind: Kind, url: str, folder: Path, filename: str | None
    ) -> tuple[int, Path | None]:
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        client = self._client
        headers = {
            "User-Agent": client.session.transport.user_agent,
            "Accept": "*/*",
            "Accept-Language": "en-US,en;q=0.9",
            "Referer": client.auth.origin + "/",
        }
        async with self._slots:
            await client.session.limiter.acquire()
            try:
                file, temp = _open_part(folder, doc_id)
            except FileNotFoundError:  # the folder was removed since: make it again
                os.makedirs(folder, exist_ok=True)
                file, temp = _open_part(folder, doc_id)
            try:
                with file:
                    status, _ = await client.session.sender.tracer.download(
                        url,
                        lambda: client.session.transport.download(url, file, headers),
                        lambda reply: reply[0],
                    )
                    client.stats.http_requests += 1
                    client.stats.downloads += 1
                    if status != 200:
                        _discard(temp)
                        return status, None
                    file.seek(0)
                    head = file.read(HEAD_BYTES)
                    json_like = head.lstrip().startswith(b"{")
                    more = file.read(ENVELOPE_BYTES - HEAD_BYTES) if json_like else b""
                    try:
                        suffix = check_body(kind, head, head + more)
                    except ValueError as exc:
                        raise DownloadError(doc_id, kind, str(exc), status) from None
                final = folder / (filename or f"document-{doc_id}.{suffix}")
                os.replace(temp, final)
            except BaseException:
                _discard(temp)
                raise
        if log.isEnabledFor(logging.DEBUG):  # (one more syscall)
            log.debug("document %d: %s saved (%d bytes)", doc_id, kind, final.stat().st_size)
        return status, final


async def retry_fetch(
    client: DocgenClient,
    error: BaseException,
    document_id: int,
    kind: Kind,
    attempt: int,
    started: float,
) -> bool:
    """The one retry decision for a file GET (idempotent): wait and say True, or say False.

    A GET of a ``*Machine`` URL is a read: a dropped connection, a timeout or a 5xx page is
    retried after the session's jittered wait (``core.retry``), within its attempt bound.
    """
    session = client.session
    return await wait_to_retry(
        error,
        what=f"document {document_id}: {kind} download",
        idempotent=True,
        attempt=attempt,
        started=started,
        policy=session.retry,
        limiter=session.limiter,
    )


def server_failure(status: int) -> TransportError:
    """A 5xx answer to a file GET, as the retry decision sees it (may succeed when repeated)."""
    return TransportError(f"HTTP {status} from the file server")
