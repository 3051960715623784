"""What a downloaded body is: the file asked for, or an error page in its place. Pure.

The portal (or a proxy in front of it) may answer a file URL with HTTP 200 and something else
than the file: a JSON error envelope (``{"error": "ACCESS_DENIED", ...}``, docs/portal.md#errors) or
an HTML login page. The body's first bytes tell: a PDF starts with ``%PDF-``, a .docx is a zip
(``PK\\x03\\x04``), an image has its format's signature.
"""

from __future__ import annotations

import json
from typing import Final, Literal

__all__ = ["ENVELOPE_BYTES", "HEAD_BYTES", "Kind", "check_body"]

Kind = Literal["pdf", "docx", "image"]

#: How much of the body's start is read to check its type (a PDF's ``%PDF-`` header may follow
#: up to 1 KiB of leading bytes, as PDF readers accept).
HEAD_BYTES: Final = 1024
#: How much of a JSON error envelope is read to name its code.
ENVELOPE_BYTES: Final = 64 * 1024
#: Image signatures and the extension of each.
_IMAGES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)
_HTML = (b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")


def _image_suffix(head: bytes) -> str | None:
    for signature, suffix in _IMAGES:
        if head.startswith(signature):
            return suffix
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _envelope(body: bytes) -> str | None:
    """``"CODE: description"`` if ``body`` is a Bitrix24 error envelope, else None."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or "error" not in data:
        return None
    code = str(data.get("error")) or "<empty code>"
    description = data.get("error_description")
    return f"{code}: {description}" if isinstance(description, str) and description else code


def check_body(kind: Kind, head: bytes, whole: bytes | None = None) -> str:
    """The file's extension if ``head`` (the body's first bytes) is a ``kind`` file.

    Args:
        kind: the file type asked for.
        head: the first bytes of the body (1 KiB is enough).
        whole: more of the body, to name the error of a JSON envelope (defaults to ``head``).

    Raises:
        ValueError: with what the body is instead (an error envelope, an HTML page, ...).
    """
    if kind == "pdf" and head.startswith(b"%PDF-"):
        return "pdf"
    if kind == "docx" and head.startswith(b"PK\x03\x04"):
        return "docx"
    if kind == "image" and (suffix := _image_suffix(head)) is not None:
        return suffix
    stripped = head.lstrip()
    if stripped.startswith(b"{"):
        error = _envelope(whole if whole is not None else head)
        if error is not None:
            raise ValueError(f"the portal answered 200 with an error: {error}")
        raise ValueError("the portal answered 200 with JSON, not a file")
    if stripped[:64].lower().startswith(_HTML) or b"<html" in head.lower():
        raise ValueError("the portal answered 200 with an HTML page (a login or error page?)")
    if kind == "pdf" and b"%PDF-" in head[:HEAD_BYTES]:
        return "pdf"  # a few bytes before the header, as PDF readers accept
    if not head:
        raise ValueError("the portal answered 200 with an empty body")
    raise ValueError(f"the body is not the {kind} asked for")
