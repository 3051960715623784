"""``DocgenClient.from_env()``: the portal's credentials from environment variables.

A webhook: ``BITRIX_WEBHOOK_URL``. An OAuth application: ``BITRIX_CLIENT_ENDPOINT``,
``BITRIX_ACCESS_TOKEN``, ``BITRIX_REFRESH_TOKEN``, ``BITRIX_CLIENT_ID`` and
``BITRIX_CLIENT_SECRET`` (docs/portal.md#oauth). The ``bitrix-docgen`` command reads the same
names. An error names the variables, never their values: each one is a secret or carries one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Unpack

import attrs

if TYPE_CHECKING:
    from bitrix_docgen_async.client import DocgenClient
    from bitrix_docgen_async.options import ClientOptions

__all__ = [
    "OAUTH_ENV",
    "WEBHOOK_ENV",
    "Credentials",
    "EnvConfigError",
    "client_from_env",
    "read_env",
]

#: The webhook URL ``https://{portal}/rest/{user}/{code}/``.
WEBHOOK_ENV = "BITRIX_WEBHOOK_URL"
#: The OAuth variables, as ``from_oauth`` keyword -> environment variable.
OAUTH_ENV: Mapping[str, str] = {
    "client_endpoint": "BITRIX_CLIENT_ENDPOINT",
    "access_token": "BITRIX_ACCESS_TOKEN",
    "refresh_token": "BITRIX_REFRESH_TOKEN",
    "client_id": "BITRIX_CLIENT_ID",
    "client_secret": "BITRIX_CLIENT_SECRET",
}


class EnvConfigError(ValueError):
    """The environment names no complete set of credentials (the message names variables only)."""


@attrs.frozen(repr=False)
class OAuthCredentials:
    """The keywords of ``DocgenClient.from_oauth`` read from the environment."""

    client_endpoint: str
    access_token: str
    refresh_token: str
    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return "OAuthCredentials(***)"


@attrs.frozen(repr=False)
class Credentials:
    """What the environment gave: a webhook URL, or an application's OAuth credentials."""

    webhook_url: str | None
    oauth: OAuthCredentials | None

    def __repr__(self) -> str:
        kind = "webhook" if self.webhook_url else "oauth"
        return f"Credentials({kind})"


def read_env(environ: Mapping[str, str] | None = None) -> Credentials:
    """The credentials in ``environ`` (default ``os.environ``).

    ``BITRIX_WEBHOOK_URL`` wins when set; otherwise all five OAuth variables must be.

    Raises:
        EnvConfigError: neither is complete; names the missing variables (never a value).
    """
    env = os.environ if environ is None else environ
    url = env.get(WEBHOOK_ENV, "").strip()
    if url:
        return Credentials(url, None)
    found = {key: env.get(name, "").strip() for key, name in OAUTH_ENV.items()}
    missing = [OAUTH_ENV[key] for key, value in found.items() if not value]
    if not missing:
        return Credentials(None, OAuthCredentials(**found))
    if len(missing) == len(OAUTH_ENV):
        raise EnvConfigError(
            f"no credentials in the environment: set {WEBHOOK_ENV}, or "
            + ", ".join(OAUTH_ENV.values())
            + " for an OAuth application"
        )
    raise EnvConfigError(
        f"{WEBHOOK_ENV} is not set and the OAuth credentials are incomplete: "
        + ", ".join(missing)
        + (" is" if len(missing) == 1 else " are")
        + " missing"
    )


def client_from_env(
    cls: type[DocgenClient],
    environ: Mapping[str, str] | None = None,
    **options: Unpack[ClientOptions],
) -> DocgenClient:
    """``cls.from_webhook`` or ``cls.from_oauth`` with the credentials of :func:`read_env`."""
    found = read_env(environ)
    if found.webhook_url is not None:
        return cls.from_webhook(found.webhook_url, **options)
    oauth = found.oauth
    if oauth is None:  # read_env returns one or the other; kept for python -O
        raise EnvConfigError("no credentials in the environment")
    return cls.from_oauth(
        client_endpoint=oauth.client_endpoint,
        access_token=oauth.access_token,
        refresh_token=oauth.refresh_token,
        client_id=oauth.client_id,
        client_secret=oauth.client_secret,
        **options,
    )
