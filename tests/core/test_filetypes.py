"""core.filetypes: a 200 body is the file asked for, or says what it is instead (pure)."""

from __future__ import annotations

import pytest

from bitrix_docgen_async.core.filetypes import Kind, check_body

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
DENIED = b'{"error":"ACCESS_DENIED","error_description":"Access denied"}'
GONE = b'  {"error": "", "error_description": "Document not found"}'


@pytest.mark.parametrize(
    ("kind", "head", "suffix"),
    [
        ("pdf", PDF, "pdf"),
        ("pdf", b"\r\n" + PDF, "pdf"),
        ("docx", b"PK\x03\x04\x14\x00\x06\x00", "docx"),
        ("image", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "png"),
        ("image", b"\xff\xd8\xff\xdb\0C", "jpg"),
        ("image", b"GIF87a\x01\0", "gif"),
        ("image", b"BM6\0\0\0", "bmp"),
        ("image", b"RIFF$\0\0\0WEBPVP8L", "webp"),
    ],
)
def test_files_are_recognised(kind: Kind, head: bytes, suffix: str) -> None:
    assert check_body(kind, head) == suffix


@pytest.mark.parametrize(
    ("kind", "head", "says"),
    [
        ("pdf", DENIED, "ACCESS_DENIED: Access denied"),
        ("pdf", GONE, "<empty code>: Document not found"),
        ("docx", b'{"error":"expired_token"}', "error: expired_token"),
        ("pdf", b'{"result": true}', "JSON, not a file"),
        ("pdf", b"{not json", "JSON, not a file"),
        ("pdf", b"<!DOCTYPE html><html><body>Log in</body></html>", "HTML page"),
        ("image", b"\n\n<HTML><HEAD><TITLE>502</TITLE>", "HTML page"),
        ("pdf", b"<html><body>Expected %PDF-1.4</body></html>", "HTML page"),
        ("docx", b"<?xml version='1.0'?><Error/>", "HTML page"),
        ("pdf", b"", "empty body"),
        ("pdf", b"PK\x03\x04", "not the pdf asked for"),
        ("docx", PDF, "not the docx asked for"),
        ("image", PDF, "not the image asked for"),
    ],
)  # fmt: skip
def test_anything_else_says_what_it_is(kind: Kind, head: bytes, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        check_body(kind, head)


def test_the_envelope_may_be_read_further_than_the_head() -> None:
    description = "x" * 2000
    body = b'{"error_description": "' + description.encode() + b'", "error": "ACCESS_DENIED"}'
    with pytest.raises(ValueError, match="JSON, not a file"):
        check_body("pdf", body[:1024])  # cut: not parseable
    with pytest.raises(ValueError, match="ACCESS_DENIED"):
        check_body("pdf", body[:1024], body)
