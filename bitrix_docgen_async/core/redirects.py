"""Which redirects the client follows, and which it refuses (docs/portal.md#addressing-and-calls).

Pure: URLs in, a URL or a :class:`~bitrix_docgen_async.errors.RedirectError` out.

Bitrix24 answers a call to a portal's old address with a 302 to the new one, and the client sends
the same POST there (docs/portal.md#addressing-and-calls). That POST carries the secrets: the
webhook code sits in
the URL's path, the OAuth access token in the body. So a redirect is followed only when the
secrets stay encrypted:

* to ``https``, on the same host or another one (a moved portal);
* to plain ``http`` only from an ``http`` loopback origin to a loopback host (a fake portal in a
  test; Bitrix24 itself refuses plain http, "Https required", §1.1);
* never to another scheme, a URL with credentials in it, or a URL that cannot be read.

The same rule judges :func:`check_move`, the origin a client rebases to.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urljoin, urlsplit

from bitrix_docgen_async.errors import RedirectError

__all__ = ["REDIRECT_STATUSES", "check_move", "follow_redirect", "is_loopback", "origin_of"]

#: The statuses that carry a ``Location`` to follow (RFC 9110 §15.4).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL: the only part of it that is safe to show.

    Credentials (``user:pass@``), the path (a webhook code), the query (a token) and the fragment
    are dropped. An unreadable URL gives ``"<unreadable URL>"``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable URL>"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def check_move(origin: str, target: str) -> None:
    """Refuse sending a portal's calls from ``origin`` to ``target`` unless the secrets stay safe.

    Args:
        origin: the URL (or origin) the calls went to so far.
        target: the absolute URL (or origin) they would go to now.

    Raises:
        RedirectError: the move is refused; it names the two origins and the reason, never a path.
    """
    source = origin_of(origin)
    try:
        parts = urlsplit(target)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise RedirectError(source, None, "the target is not a valid URL") from None
    shown = origin_of(target)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not host:
        raise RedirectError(source, None, "the target is not an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise RedirectError(source, shown, "the target carries credentials")
    if scheme == "https":
        return
    origin_parts = urlsplit(origin)
    from_local = origin_parts.scheme.lower() == "http" and is_loopback(origin_parts.hostname)
    if from_local and is_loopback(host):
        return  # a local test portal: nothing leaves the machine
    raise RedirectError(
        source, shown, "it leads to plain http, which would send the webhook code or token in clear"
    )


def follow_redirect(url: str, location: str) -> str:
    """The absolute URL to send the same request to, if the redirect may be followed.

    Args:
        url: the URL the redirect answered (it may hold a secret: it is never shown).
        location: the ``Location`` header, absolute or relative to ``url``.

    Returns:
        The absolute target URL (it holds whatever path the portal gave: never log it).

    Raises:
        RedirectError: the redirect leads somewhere the secrets would not be safe (see the module
            docstring).
    """
    try:
        target = urljoin(url, location.strip())
    except ValueError:
        raise RedirectError(origin_of(url), None, "the Location is not a valid URL") from None
    check_move(url, target)
    return target
