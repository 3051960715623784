"""Wire helpers of the fake portal: reading parameters, ``time`` blocks, error pages.

Parameters come from the query string, a JSON body, a form body or a multipart body, and are
merged in that order. Query strings and form bodies are decoded with PHP ``parse_str`` semantics
(bracket keys nest, every scalar is a string). A multipart file part becomes the two-element
array ``[filename, base64 content]`` that Bitrix accepts for files.
"""

from __future__ import annotations

import base64
import json
import math
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from bitrix_docgen_async.core.encoding import parse_str

__all__ = [
    "BadRequestBody",
    "html_page",
    "php_array",
    "read_params",
    "request_base_url",
    "time_block",
]

_REASONS = {502: "Bad Gateway", 504: "Gateway Time-out"}
#: A ``Host`` header worth echoing into URLs: a name or IPv4 address, or a bracketed IPv6 one,
#: with an optional port (anything else is ignored, so no header can inject into a URL).
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?")


def request_base_url(request: web.Request, fallback: str) -> str:
    """``scheme://host[:port]`` as the caller addressed the portal.

    The ``Host`` header (what a reverse proxy or a container port mapping forwards) and the
    scheme of ``X-Forwarded-Proto`` when a TLS proxy sets it (else the connection's own);
    ``fallback`` when the request has no usable ``Host``.
    """
    host = request.headers.get("Host", "")
    if not _HOST.fullmatch(host):
        return fallback
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    scheme = forwarded if forwarded in ("http", "https") else request.scheme
    return f"{scheme}://{host}"


class BadRequestBody(Exception):
    """The body could not be decoded (invalid JSON, or JSON that is not an object)."""


async def read_params(request: web.Request) -> dict[str, Any]:
    """Every parameter of a REST request, query string first, then the body.

    Raises:
        BadRequestBody: a JSON body that does not hold an object.
    """
    params: dict[str, Any] = parse_str(request.rel_url.raw_query_string)
    if not request.body_exists:
        return params
    ctype = request.content_type
    if ctype == "application/json":
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError as exc:
            raise BadRequestBody("the body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise BadRequestBody("the JSON body is not an object")
        params.update(body)
    elif ctype == "multipart/form-data":
        params.update(parse_str(await _multipart_query(request)))
    else:
        params.update(parse_str(await request.read()))
    return params


async def _multipart_query(request: web.Request) -> str:
    pairs: list[str] = []
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        name = quote(part.name, safe="[]")
        if part.filename is not None:
            content = base64.b64encode(await part.read()).decode("ascii")
            pairs.append(f"{name}[0]={quote(part.filename, safe='')}")
            pairs.append(f"{name}[1]={quote(content, safe='')}")
        else:
            pairs.append(f"{name}={quote(await part.text(), safe='')}")
    return "&".join(pairs)


def php_array(items: dict[str, Any]) -> dict[str, Any] | list[Any]:
    """How PHP's ``json_encode`` shows an array: a list when empty or keyed ``0..n-1``."""
    if all(key == str(index) for index, key in enumerate(items)):
        return list(items.values())
    return items


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")


def time_block(
    start: float,
    finish: float,
    processing: float,
    *,
    operating: float | None = None,
    reset_at: float | None = None,
) -> dict[str, Any]:
    """A ``time`` object; ``start``/``finish``/``reset_at`` are unix times.

    See docs/portal.md#responses-and-the-time-object.
    """
    block: dict[str, Any] = {
        "start": start,
        "finish": finish,
        "duration": finish - start,
        "processing": processing,
        "date_start": _iso(start),
        "date_finish": _iso(finish),
    }
    if reset_at is not None:
        block["operating_reset_at"] = math.ceil(reset_at)
    if operating is not None:
        block["operating"] = operating
    return block


def html_page(status: int) -> web.Response:
    """The nginx-style HTML error page of a gateway status (502, 504)."""
    title = f"{status} {_REASONS[status]}"
    text = (
        f"<html><head><title>{title}</title></head>\n<body>\n"
        f"<center><h1>{title}</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n"
    )
    return web.Response(status=status, text=text, content_type="text/html")
