"""Scrub text that came from the portal before it goes into an error message.

Pure. An error message travels far: logs, the bulk journal, a job queue's result store. Text the
portal sends back may quote the request: a proxy's error page echoes the path (and so the webhook
code, docs/portal.md#addressing-and-calls), an ``error_description`` may quote the URL or a token.
The rule:

1. HTML bodies are never quoted at all (:mod:`.envelope` describes them: status, content type,
   size).
2. In the portal's own texts (``error``, ``error_description``), which are kept because they are
   the portal's explanation, :func:`scrub` replaces

   * every occurrence of a secret the caller knows (the webhook code, the access and refresh
     tokens, the client secret) with ``***``;
   * every absolute URL (``scheme://...``) with ``<URL>``;
   * every path under ``/rest/`` with ``<path>`` (a webhook path without its host);
   * the value of ``auth=``, ``access_token=``, ``refresh_token=``, ``client_secret=``,
     ``token=`` with ``***``;
   * every run of 16 or more letters and digits that mixes both (the shape of webhook codes and
     OAuth tokens; words and method names have no digits) with ``***``;

   and cuts the result to :data:`MAX_TEXT` characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MAX_TEXT", "scrub"]

#: The longest portal text kept in a message; a description is one sentence, not a document.
MAX_TEXT = 500
#: Secrets shorter than this are not searched for: a short one would blank out ordinary words.
_MIN_SECRET = 6

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]*")
_REST_PATH = re.compile(r"/rest/[^\s\"'<>]*")
_QUERY_SECRET = re.compile(
    r"\b(auth|access_token|refresh_token|client_secret|token)=[^&\s\"'<>]+", re.IGNORECASE
)
_TOKEN_LIKE = re.compile(
    r"(?<![A-Za-z0-9])(?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{16,}"
)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without anything that could be a URL, a request path or a token.

    Args:
        text: a text the portal sent (an error code or description).
        secrets: secrets the caller's credentials hold; each occurrence becomes ``***``.

    Returns:
        The scrubbed text, at most :data:`MAX_TEXT` characters (a cut ends with ``...``).
    """
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL.sub("<URL>", text)
    text = _REST_PATH.sub("<path>", text)
    text = _QUERY_SECRET.sub(r"\1=***", text)
    text = _TOKEN_LIKE.sub("***", text)
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 3] + "..."
    return text
