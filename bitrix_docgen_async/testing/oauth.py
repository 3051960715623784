"""OAuth 2.0 for the fake portal: tokens, their expiry and the ``/oauth/token/`` endpoint.

The endpoint follows docs/portal.md#oauth: ``grant_type=authorization_code`` (a code from
:meth:`TokenAuthority.issue_code`, valid 30 s, single use) and ``grant_type=refresh_token``.
Every grant returns a new access token *and* a new refresh token; the refresh token used stops
working. Access tokens expire ``lifetime`` seconds after they were issued, on the portal's clock.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import attrs
from aiohttp import web

from bitrix_docgen_async.core.encoding import parse_str
from bitrix_docgen_async.testing.state import PortalStats
from bitrix_docgen_async.testing.wire import request_base_url

__all__ = ["CODE_LIFETIME", "OAuthCredentials", "TokenAuthority"]

#: Seconds an authorization code stays valid (docs/portal.md#oauth).
CODE_LIFETIME = 30.0
_SCOPE = "crm,documentgenerator"


@attrs.frozen
class OAuthCredentials:
    """What an installed application knows: endpoints, the first token pair, app secrets.

    Attributes:
        client_endpoint: the portal's REST base URL (``http://127.0.0.1:{port}/rest/``).
        access_token: the first access token.
        refresh_token: the first refresh token.
        client_id: the application's client id.
        client_secret: the application's secret.
        oauth_url: the token endpoint (``http://127.0.0.1:{port}/oauth/token/``).
        application_token: the token that authenticates event deliveries.
        member_id: the portal's member id.
    """

    client_endpoint: str
    access_token: str = attrs.field(repr=False)
    refresh_token: str = attrs.field(repr=False)
    client_id: str
    client_secret: str = attrs.field(repr=False)
    oauth_url: str
    application_token: str = attrs.field(repr=False)
    member_id: str


def _token() -> str:
    return secrets.token_hex(16)


class TokenAuthority:
    """Issues and checks the tokens of the one application installed on the portal."""

    def __init__(
        self, *, clock: Callable[[], float], lifetime: float, stats: PortalStats, user_id: int = 1
    ) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.stats = stats
        self.user_id = user_id
        self.client_id = f"local.{secrets.token_hex(8)}"
        self.client_secret = _token()
        self.application_token = _token()
        self.member_id = _token()
        self.base_url = ""
        self._access: dict[str, float] = {}
        self._refresh: set[str] = set()
        self._codes: dict[str, float] = {}
        self.first_access, self.first_refresh = self.issue_pair()

    def issue_pair(self) -> tuple[str, str]:
        """A fresh access token (expiring after ``lifetime``) and a fresh refresh token."""
        access, refresh = _token(), _token()
        self._access[access] = self.clock() + self.lifetime
        self._refresh.add(refresh)
        return access, refresh

    def issue_code(self) -> str:
        """An authorization code for ``grant_type=authorization_code``."""
        code = _token()
        self._codes[code] = self.clock() + CODE_LIFETIME
        return code

    def check(self, token: str) -> str:
        """``"ok"``, ``"expired"`` or ``"unknown"`` for an access token."""
        expires_at = self._access.get(token)
        if expires_at is None:
            return "unknown"
        return "ok" if self.clock() < expires_at else "expired"

    def expire_all(self) -> None:
        """Every access token issued so far is expired from now on."""
        for token in self._access:
            self._access[token] = float("-inf")

    def credentials(self) -> OAuthCredentials:
        """The application's view, with the first token pair."""
        return OAuthCredentials(
            client_endpoint=f"{self.base_url}/rest/",
            access_token=self.first_access,
            refresh_token=self.first_refresh,
            client_id=self.client_id,
            client_secret=self.client_secret,
            oauth_url=f"{self.base_url}/oauth/token/",
            application_token=self.application_token,
            member_id=self.member_id,
        )

    async def handle(self, request: web.Request) -> web.Response:
        """The ``/oauth/token/`` endpoint (GET query string, or a POST form)."""
        params: dict[str, Any] = parse_str(request.rel_url.raw_query_string)
        if request.method == "POST" and request.can_read_body:
            params.update(parse_str(await request.read()))
        grant = params.get("grant_type")
        if grant not in ("refresh_token", "authorization_code"):
            return _error(400, "invalid_request", "Unsupported or missing grant_type")
        # As the live authorization server answers (b24pysdk's live tests,
        # docs/portal.md#where-the-sources-disagree): an
        # unknown client_id is HTTP 200 with an ``error`` key, a wrong secret HTTP 400.
        if params.get("client_id") != self.client_id:
            return _error(200, "wrong_client", "Wrong client")
        if not secrets.compare_digest(str(params.get("client_secret", "")), self.client_secret):
            return _error(400, "invalid_client", "Invalid client credentials")
        if grant == "refresh_token":
            refresh = params.get("refresh_token")
            if not isinstance(refresh, str) or not refresh:
                return _error(400, "invalid_request", 'No "refresh_token" parameter found')
            if refresh not in self._refresh:
                return _error(400, "invalid_grant", "Invalid refresh token")
            self._refresh.discard(refresh)
            self.stats.token_refreshes += 1
        else:
            code = params.get("code")
            expires_at = self._codes.pop(code, None) if isinstance(code, str) else None
            if expires_at is None or self.clock() >= expires_at:
                return _error(400, "invalid_grant", "Invalid authorization code")
        base = request_base_url(request, self.base_url)
        return web.json_response(self._grant(base, refreshed=grant == "refresh_token"))

    def _grant(self, base: str, *, refreshed: bool) -> dict[str, Any]:
        """A token answer whose endpoints are on ``base``, the host the caller used."""
        access, refresh = self.issue_pair()
        body: dict[str, Any] = {
            "access_token": access,
            "client_endpoint": f"{base}/rest/",
            "domain": base.partition("://")[2],
            "expires_in": round(self.lifetime),
            "member_id": self.member_id,
            "refresh_token": refresh,
            "scope": _SCOPE,
            "server_endpoint": f"{base}/rest/",
            "status": "L",
        }
        if refreshed:
            body["expires"] = int(time.time() + self.lifetime)
            body["user_id"] = self.user_id
        return dict(sorted(body.items()))


def _error(status: int, code: str, description: str) -> web.Response:
    return web.json_response({"error": code, "error_description": description}, status=status)
