"""Credentials: an incoming webhook, or an OAuth application with token refresh.

Secrets (the webhook code, access and refresh tokens, the client secret) never appear in a repr,
a log record or an exception message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import attrs

from bitrix_docgen_async.core.errormap import oauth_error_for
from bitrix_docgen_async.core.redact import scrub
from bitrix_docgen_async.core.redirects import check_move, is_loopback, origin_of
from bitrix_docgen_async.errors import OAuthError
from bitrix_docgen_async.transport import Transport

__all__ = ["Auth", "OAuthAuth", "OAuthTokens", "TokenStore", "WebhookAuth"]

log = logging.getLogger("bitrix_docgen_async.auth")

#: The authorization server named throughout the docs (docs/portal.md#oauth); regional portals get
#: theirs in the token response's ``domain``, so it is configurable.
DEFAULT_OAUTH_URL = "https://oauth.bitrix.info/oauth/token/"


def _check_base_url(url: str, what: str) -> tuple[str, str]:
    """Validate a portal URL; return (origin, path). Plain http is allowed only on loopback."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"{what} must be a non-empty string")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute https:// URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        # Bitrix24 refuses plain HTTP ("Https required", docs/portal.md#addressing-and-calls).
        raise ValueError(f"{what} must use https (plain http only for a local fake portal)")
    if parts.query or parts.fragment:
        raise ValueError(f"{what} must not carry a query string or fragment")
    return origin_of(url), parts.path


class Auth(Protocol):
    """How a call is addressed and authorised."""

    @property
    def origin(self) -> str:
        """``scheme://host`` of the portal (safe to show)."""

    def url_for(self, method: str) -> str:
        """The URL of a REST method (may hold a secret: never log it)."""

    def body_params(self) -> dict[str, Any]:
        """Parameters every request body carries (``auth`` for OAuth)."""

    def rebase(self, origin: str) -> None:
        """The portal moved to ``origin`` (a 302 told us); raise RedirectError if it is unsafe."""

    def secrets(self) -> tuple[str, ...]:
        """The secrets this auth sends, to blank out of any text shown (never log the result)."""

    @property
    def token(self) -> str | None:
        """The access token in use now, if this auth has one (for single-flight refresh)."""

    async def refresh(self, transport: Transport, stale: str | None) -> None:
        """Get a new access token after ``expired_token``; raise if this auth cannot."""


class WebhookAuth:
    """An incoming webhook: ``https://{portal}/rest/{user_id}/{code}/``.

    Args:
        url: the webhook URL exactly as Bitrix24 shows it (a trailing slash is optional).

    Raises:
        ValueError: the URL is not of that form.
    """

    def __init__(self, url: str) -> None:
        origin, path = _check_base_url(url, "webhook URL")
        segments = [s for s in path.split("/") if s]
        if len(segments) != 3 or segments[0] != "rest" or not segments[1].isdigit():
            raise ValueError("webhook URL must look like https://{portal}/rest/{user_id}/{code}/")
        self._origin = origin
        self.user_id = int(segments[1])
        self._code = segments[2]

    def __repr__(self) -> str:
        return f"WebhookAuth(portal={self._origin!r}, user_id={self.user_id}, code='***')"

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def token(self) -> str | None:
        return None

    def url_for(self, method: str) -> str:
        return f"{self._origin}/rest/{self.user_id}/{self._code}/{method}"

    def body_params(self) -> dict[str, Any]:
        return {}

    def rebase(self, origin: str) -> None:
        """Send later calls to ``origin``: https, or loopback from a loopback test portal.

        Raises:
            RedirectError: ``origin`` would carry the webhook code in clear
            (docs/portal.md#addressing-and-calls).
        """
        check_move(self._origin, origin)
        self._origin = origin_of(origin)

    def secrets(self) -> tuple[str, ...]:
        return (self._code,)

    async def refresh(self, transport: Transport, stale: str | None) -> None:
        """Webhooks have nothing to refresh."""
        raise OAuthError("expired_token", "a webhook cannot be refreshed; it may have expired")


@attrs.frozen(repr=False)
class OAuthTokens:
    """A token pair as the authorization server returned it."""

    access_token: str
    refresh_token: str
    expires_in: int | None = None
    client_endpoint: str | None = None
    domain: str | None = None
    member_id: str | None = None

    def __repr__(self) -> str:
        return f"OAuthTokens(access_token='***', refresh_token='***', expires_in={self.expires_in})"


#: Called once after every successful refresh with the new pair; store it, and stop using the
#: old refresh token (each refresh returns a new one, docs/portal.md#oauth).
TokenStore = Callable[[OAuthTokens], Awaitable[None]]


class OAuthAuth:
    """An OAuth 2.0 application: ``{client_endpoint}{method}`` with ``auth`` in the body.

    Refreshes only after a call was refused with 401 ``expired_token`` (the docs warn that
    refreshing on a timer can get an application blocked), once however many calls wait, and
    never retries a refresh that failed.
    """

    def __init__(
        self,
        *,
        client_endpoint: str,
        access_token: str,
        refresh_token: str,
        client_id: str,
        client_secret: str,
        token_store: TokenStore | None = None,
        oauth_url: str = DEFAULT_OAUTH_URL,
    ) -> None:
        origin, path = _check_base_url(client_endpoint, "client_endpoint")
        _check_base_url(oauth_url, "oauth_url")
        for name, value in (
            ("access_token", access_token),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
        self._origin = origin
        self._path = path if path.endswith("/") else path + "/"
        self._access = access_token
        self._refresh = refresh_token
        self.client_id = client_id
        self._secret = client_secret
        self._store = token_store
        self.oauth_url = oauth_url
        self._lock = asyncio.Lock()
        self._failed: tuple[str, OAuthError] | None = None
        #: Tokens replaced by refreshes (the last few), still blanked out of error texts.
        self._retired: tuple[str, ...] = ()
        #: How many refreshes this object performed.
        self.refreshes = 0

    def __repr__(self) -> str:
        return (
            f"OAuthAuth(portal={self._origin!r}, client_id={self.client_id!r}, "
            "access_token='***', refresh_token='***', client_secret='***')"
        )

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def token(self) -> str | None:
        return self._access

    def url_for(self, method: str) -> str:
        return f"{self._origin}{self._path}{method}"

    def body_params(self) -> dict[str, Any]:
        return {"auth": self._access}

    def rebase(self, origin: str) -> None:
        """Send later calls to ``origin``: https, or loopback from a loopback test portal.

        Raises:
            RedirectError: ``origin`` would carry the access token in clear
            (docs/portal.md#addressing-and-calls).
        """
        check_move(self._origin, origin)
        self._origin = origin_of(origin)

    def secrets(self) -> tuple[str, ...]:
        # The replaced access token too: a reply to a call sent before a refresh may echo it.
        return (self._access, self._refresh, self._secret, *self._retired)

    async def refresh(self, transport: Transport, stale: str | None) -> None:
        """Refresh once for ``stale``: later callers holding the same stale token just wait.

        Raises:
            OAuthError: the authorization server refused (``invalid_grant``: authorize again).
        """
        async with self._lock:
            if stale is not None and stale != self._access:
                return  # another caller already refreshed
            if self._failed is not None and self._failed[0] == self._access:
                raise self._failed[1]
            try:
                tokens = await self._request_tokens(transport)
            except OAuthError as exc:
                self._failed = (self._access, exc)
                raise
            self._retired = (self._access, self._refresh, *self._retired)[:4]
            self._access, self._refresh = tokens.access_token, tokens.refresh_token
            self.refreshes += 1
            log.info("access token refreshed (refresh #%d)", self.refreshes)
            if self._store is not None:
                await self._store(tokens)

    async def _request_tokens(self, transport: Transport) -> OAuthTokens:
        response = await transport.get(
            self.oauth_url,
            {
                "grant_type": "refresh_token",
                "client_id": self.client_id,
                "client_secret": self._secret,
                "refresh_token": self._refresh,
            },
        )
        # The token endpoint answers with a bare object, not a {"result": ...} envelope, and
        # may report an error with HTTP 200 (``wrong_client``, docs/portal.md#oauth).
        try:
            data = json.loads(response.body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise OAuthError("invalid_response", "not a JSON object", status=response.status)
        if "error" in data:
            # The server's own texts, scrubbed like a portal's (core/redact.py): the request's
            # query held the client secret and the refresh token.
            raise oauth_error_for(
                scrub(str(data["error"]), self.secrets()),
                scrub(str(data.get("error_description") or ""), self.secrets()),
                status=response.status,
            )
        return _tokens_from(data, response.status)


def _tokens_from(data: dict[str, Any], status: int) -> OAuthTokens:
    access, refresh = data.get("access_token"), data.get("refresh_token")
    if not isinstance(access, str) or not isinstance(refresh, str) or not access or not refresh:
        raise OAuthError("invalid_response", "no token pair in the answer", status=status)
    expires = data.get("expires_in")
    return OAuthTokens(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(expires)
        if isinstance(expires, int | str) and str(expires).isdigit()
        else None,
        client_endpoint=data.get("client_endpoint"),
        domain=data.get("domain"),
        member_id=data.get("member_id"),
    )
