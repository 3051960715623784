"""Where one portal's limits live in Redis: key prefixes made of hashes, never of secrets."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from bitrix_docgen_async.auth import Auth

__all__ = ["key_prefixes", "safe_url"]


def _digest(kind: str, text: str) -> str:
    return hashlib.sha256(f"{kind}\n{text}".encode()).hexdigest()[:32]


def _portal_and_identity(key: str) -> tuple[str, str]:
    text = key.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return text, text
    port = f":{parts.port}" if parts.port else ""
    portal = f"{parts.scheme}://{parts.hostname}{port}".lower()
    identity = portal + parts.path.rstrip("/")
    if parts.query:
        identity += f"?{parts.query}"
    if parts.fragment:
        identity += f"#{parts.fragment}"
    return portal, identity


def key_prefixes(key: str | Auth, namespace: str = "bitrix_docgen") -> tuple[str, str]:
    """The Redis key prefixes for one portal: (request bucket, operating budgets).

    Only hashes go into Redis, never the key itself (a webhook URL holds its secret code).
    The request bucket is keyed by the portal's origin, because the portal counts requests per
    portal (and source address) whatever the credentials; the operating budgets are keyed by the
    whole identity, because the portal counts execution time per webhook or application. A key
    that is not a URL keys both.

    Args:
        key: the webhook URL; ``f"{client_endpoint}#{client_id}"`` of an OAuth application;
            a :class:`~bitrix_docgen_async.WebhookAuth` or :class:`~bitrix_docgen_async
            .OAuthAuth` (the same prefixes as those strings); or any string that every worker
            of one portal passes alike.
        namespace: the first part of every key.

    Raises:
        ValueError: the key is empty.
    """
    if not isinstance(key, str):
        client_id = getattr(key, "client_id", None)
        key = key.url_for("") + (f"#{client_id}" if client_id else "")
    portal, identity = _portal_and_identity(key)
    if not identity:
        raise ValueError("the limiter key must not be empty")
    return (
        f"{namespace}:{{{_digest('portal', portal)}}}",
        f"{namespace}:{{{_digest('identity', identity)}}}",
    )


def safe_url(url: str) -> str:
    """A Redis URL without user name or password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
