"""Streaming, atomic downloads of a document's .docx, PDF or preview image.

The ``*Machine`` URL is fetched as is: it carries its own authorisation, and editing it breaks
the signature (docs/portal.md#machine-urls-and-downloads). It is a secret, so it is never logged or
put in an error. The body streams into a temporary file beside the target, renamed into place only
when complete, so a failed download leaves nothing behind. A stale URL (401/403/404) is refreshed
(up to 3 times) with ``document.get``; machine URLs are REST requests, so each one takes a request
token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bitrix_docgen_async.errors import DownloadError, TransportError
from bitrix_docgen_async.models import Document

if TYPE_CHECKING:
    from bitrix_docgen_async.client import DocgenClient

__all__ = ["Downloader", "Kind"]

log = logging.getLogger("bitrix_docgen_async.download")

Kind = Literal["pdf", "docx", "image"]
_STALE = frozenset({401, 403, 404})
#: How often a stale URL is replaced by a fresh ``document.get`` before giving up. OAuth machine
#: URLs embed the access token, so one can go stale again if the token expires meanwhile.
_REFRESHES = 3
_IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


def _url(document: Document, kind: Kind) -> str | None:
    if kind == "pdf":
        return document.pdf_url_machine
    if kind == "docx":
        return document.download_url_machine
    return document.image_url_machine


# Small file-system steps, kept synchronous on purpose: each is one quick syscall, cheaper
# than a hop to a thread (the chunk writes themselves are as quick).


def _folder_of(target: Path) -> Path:
    return target if (target.is_dir() or not target.suffix) else target.parent


def _discard(temp: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        Path(temp).unlink()


def _place(temp: str, final: Path) -> int:
    os.replace(temp, final)
    return final.stat().st_size


def _suffix(kind: Kind, content_type: str) -> str:
    if kind != "image":
        return kind
    return _IMAGE_TYPES.get(content_type.split(";")[0].strip().lower(), "bin")


class Downloader:
    """Downloads with bounded concurrency, shared by everything of one client."""

    def __init__(self, client: DocgenClient, *, concurrency: int = 8) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self._client = client
        self._slots = asyncio.Semaphore(concurrency)

    async def download(
        self,
        document: Document | int,
        dest: str | os.PathLike[str],
        kind: Kind = "pdf",
        *,
        filename: str | None = None,
    ) -> Path:
        """Save one file of ``document``; returns its path.

        Args:
            document: a :class:`Document` (its URLs are used) or an id (fetched first).
            dest: a folder (created if missing; the file is named ``document-{id}.{ext}``
                unless ``filename`` says otherwise) or a file path with a suffix.
            kind: ``"pdf"``, ``"docx"`` or ``"image"``.

        Raises:
            DownloadError: not converted (yet), conversion failed, or the portal kept refusing.
        """
        if kind not in ("pdf", "docx", "image"):
            raise ValueError("kind must be 'pdf', 'docx' or 'image'")
        if filename is not None and (not filename or Path(filename).name != filename):
            raise ValueError("filename must be a plain file name")
        target = Path(dest)
        folder = _folder_of(target)
        if not isinstance(document, Document):
            document = await self._client.documents.get(document)
        refreshes = 0
        retry = self._client.session.retry
        attempts = 0
        while True:
            url = _url(document, kind)
            if not url:
                if refreshes == 0:
                    document, refreshes = await self._client.documents.get(document.id), 1
                    continue
                reason = "its PDF conversion failed" if document.pdf_failed else "no file yet"
                raise DownloadError(document.id, kind, reason)
            try:
                status, path = await self._fetch(document.id, kind, url, folder, target, filename)
            except TransportError as exc:
                attempts += 1
                if attempts > retry.max_attempts:
                    raise DownloadError(document.id, kind, str(exc)) from None
                await asyncio.sleep(retry.delay(attempts))
                continue
            if path is not None:
                return path
            if status in _STALE and refreshes < _REFRESHES:
                document, refreshes = await self._client.documents.get(document.id), refreshes + 1
                continue
            attempts += 1
            if status < 500 or attempts > retry.max_attempts:
                raise DownloadError(document.id, kind, "the portal refused", status)
            await asyncio.sleep(retry.delay(attempts))

    async def _fetch(
        self, doc_id: int, kind: Kind, url: str, folder: Path, target: Path, filename: str | None
    ) -> tuple[int, Path | None]:
        os.makedirs(folder, exist_ok=True)
        client = self._client
        headers = {
            "User-Agent": client.session.transport.user_agent,
            "Accept": "*/*",
            "Accept-Language": "en-US,en;q=0.9",
            "Referer": client.auth.origin + "/",
        }
        async with self._slots:
            await client.session.limiter.acquire()
            handle, temp = tempfile.mkstemp(
                dir=folder, prefix=f".document-{doc_id}.", suffix=".part"
            )
            try:
                with os.fdopen(handle, "wb") as file:
                    status, head = await client.session.transport.download(url, file, headers)
                client.stats.http_requests += 1
                client.stats.downloads += 1
                if status != 200:
                    _discard(temp)
                    return status, None
                if folder == target:
                    name = (
                        filename
                        or f"document-{doc_id}.{_suffix(kind, head.get('Content-Type', ''))}"
                    )
                    final = folder / name
                else:
                    final = target
                size = _place(temp, final)
            except BaseException:
                _discard(temp)
                raise
        log.debug("document %d: %s saved (%d bytes)", doc_id, kind, size)
        return status, final
