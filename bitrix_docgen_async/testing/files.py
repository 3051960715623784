"""The files of the fake document generator: template ``.docx``, rendered ``.docx``, PDF, PNG.

Everything is built with the standard library and kept tiny but valid: a ``.docx`` is a zip
holding ``[Content_Types].xml``, ``_rels/.rels`` and ``word/document.xml``; a PDF has one page
with one text object, a cross-reference table and a trailer; a PNG is one solid colour. Zip
entries carry a fixed timestamp, so the same input always gives the same bytes.

Placeholders are written ``{Name}`` in the document text, as in Bitrix24 templates.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from typing import Any
from xml.sax.saxutils import escape

__all__ = [
    "DOCX_TYPE",
    "build_docx",
    "build_pdf",
    "build_png",
    "decode_base64",
    "docx_placeholders",
    "is_docx",
    "render_docx",
]

#: The MIME type of a ``.docx``.
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

_STAMP = (2024, 1, 1, 0, 0, 0)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")
_PARTS = re.compile(r"word/(document|header\d*|footer\d*)\.xml")
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
    '+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)


def _zip(entries: Iterable[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(zipfile.ZipInfo(name, _STAMP), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def build_docx(content: str | Iterable[str] = ("DocumentNumber", "Comment")) -> bytes:
    """A minimal valid ``.docx`` to use as a template.

    Args:
        content: the document text (a string; each line becomes a paragraph and may hold
            ``{Placeholder}`` markers), or placeholder names, each written as a paragraph
            ``Name: {Name}``.

    Returns:
        The bytes of the ``.docx``; the same ``content`` always gives the same bytes.
    """
    if isinstance(content, str):
        lines = content.splitlines() or [""]
    else:
        lines = [f"{name}: {{{name}}}" for name in content]
    paragraphs = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{escape(line)}</w:t></w:r></w:p>' for line in lines
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<w:document xmlns:w="{_W}"><w:body>{paragraphs}</w:body></w:document>'
    )
    return _zip(
        [
            ("[Content_Types].xml", _CONTENT_TYPES.encode()),
            ("_rels/.rels", _RELS.encode()),
            ("word/document.xml", document.encode()),
        ]
    )


def is_docx(data: bytes) -> bool:
    """Whether ``data`` is a zip holding ``word/document.xml``."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return False


def decode_base64(text: Any) -> bytes | None:
    """Strict base64 (no ``data:`` prefix, no line breaks); ``None`` when it is not that."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def docx_placeholders(data: bytes) -> list[str]:
    """The ``{Placeholder}`` names in a ``.docx``'s body, headers and footers, in order, once."""
    found: dict[str, None] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if _PARTS.fullmatch(name):
                text = archive.read(name).decode("utf-8", "replace")
                found.update(dict.fromkeys(_PLACEHOLDER.findall(text)))
    return list(found)


def render_docx(template: bytes, values: Mapping[str, Any]) -> bytes:
    """``template`` with each ``{Placeholder}`` replaced by its value (missing ones by ``""``)."""

    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return "" if value is None else escape(str(value))

    entries: list[tuple[str, bytes]] = []
    with zipfile.ZipFile(io.BytesIO(template)) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            if _PARTS.fullmatch(name):
                data = _PLACEHOLDER.sub(fill, data.decode("utf-8", "replace")).encode()
            entries.append((name, data))
    return _zip(entries)


def _pdf_text(text: str) -> str:
    ascii_text = text.encode("ascii", "replace").decode("ascii")
    return ascii_text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def build_pdf(lines: Iterable[str]) -> bytes:
    """A one-page PDF 1.4 showing ``lines`` in Helvetica (non-ASCII characters become ``?``)."""
    shown = " T* ".join(f"({_pdf_text(line)}) Tj" for line in lines)
    stream = f"BT /F1 12 Tf 14 TL 72 770 Td {shown} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def build_png(colour: tuple[int, int, int] = (200, 200, 200), size: int = 16) -> bytes:
    """A ``size`` x ``size`` RGB PNG of one colour."""
    row = b"\x00" + bytes(colour) * size  # filter type 0, then the pixels
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(row * size))
        + _chunk(b"IEND", b"")
    )
