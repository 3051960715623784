"""Browser and machine URLs of documents and templates, and the endpoints that serve the bytes.

docs/portal.md#machine-urls-and-downloads. ``downloadUrl``/``pdfUrl``/``imageUrl`` and a template's
``download`` point at ``/bitrix/services/main/ajax.php?action=...&SITE_ID=s1&id=<id>``: links for a
logged-in browser user, which this portal does not serve. The ``*Machine`` URLs are REST calls that
carry their own authorization:

* OAuth: ``/rest/crm.documentgenerator.document.getPdf.json?auth=<access token>&token=<t>``;
* webhook: ``/rest/{user}/{code}/crm.documentgenerator.document.getPdf.json?token=<t>`` (the
  webhook pair in the path, as the docs say webhook URLs may be).

``token`` is ``<payload>.<signature>``: the payload names the action and the object id, the
signature is an HMAC-SHA256 with a per-portal secret over the action, the id and the caller's
identity (the webhook, or the application), so a link works only for the caller it was made for.
The endpoints (``document.download``, ``document.getPdf``, ``document.getImage``,
``template.download``) answer a GET with the raw bytes, ``Content-Type`` and an attachment
``Content-Disposition`` with a filename. Refusals are JSON errors: 401 from the portal's usual
auth check, 403 ``ACCESS_DENIED`` for a missing or bad token, 404 when the object is gone or the
file is not (yet) there. They are REST requests, so each one is counted against the request
bucket and the method's operating budget like any other call; ``batch`` refuses them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bitrix_docgen_async.testing.files import DOCX_TYPE
from bitrix_docgen_async.testing.state import CallContext, Handler, MethodRegistry, PortalError

__all__ = ["ACTIONS", "UrlSigner", "browser_url", "machine_url", "register_downloads"]

#: The REST action behind each kind of file, as written in the URLs.
ACTIONS = {
    "docx": "crm.documentgenerator.document.download",
    "pdf": "crm.documentgenerator.document.getPdf",
    "image": "crm.documentgenerator.document.getImage",
    "template": "crm.documentgenerator.template.download",
}
_TYPES = {"docx": DOCX_TYPE, "pdf": "application/pdf", "image": "image/png", "template": DOCX_TYPE}
_SUFFIX = {"docx": "docx", "pdf": "pdf", "image": "png", "template": "docx"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UrlSigner:
    """Makes and checks the ``token`` of machine URLs with one portal's secret."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    def _signature(self, payload: str, identity: str) -> str:
        message = f"{payload}|{identity}".encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def token(self, action: str, object_id: int, identity: str) -> str:
        """A token for ``action`` on ``object_id``, valid for the caller ``identity``."""
        nonce = secrets.token_hex(4)
        payload = _b64(f"action={action.lower()}&id={object_id}&_={nonce}".encode())
        return f"{payload}.{self._signature(payload, identity)}"

    def verify(self, token: Any, action: str, identity: str) -> int | None:
        """The object id a token grants ``action`` on to ``identity``, or ``None``."""
        if not isinstance(token, str) or token.count(".") != 1:
            return None
        payload, signature = token.split(".")
        if not hmac.compare_digest(signature, self._signature(payload, identity)):
            return None
        try:
            fields = dict(part.split("=", 1) for part in _unb64(payload).decode().split("&"))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        if fields.get("action") != action.lower() or not fields.get("id", "").isdigit():
            return None
        return int(fields["id"])


def browser_url(base_url: str, kind: str, object_id: int) -> str:
    """The ``ajax.php`` link of a logged-in browser user (not served by the fake portal)."""
    return (
        f"{base_url}/bitrix/services/main/ajax.php?action={ACTIONS[kind]}&SITE_ID=s1&id={object_id}"
    )


def machine_url(ctx: CallContext, kind: str, object_id: int) -> str:
    """The ``*Machine`` URL of a file for the caller of ``ctx`` (see the module docstring)."""
    action = ACTIONS[kind]
    token = ctx.portal.signer.token(action, object_id, ctx.auth.identity)
    base = ctx.base_url
    if ctx.auth.kind == "webhook":
        path = f"{base}/rest/{ctx.auth.user_id}/{ctx.auth.webhook_code}/{action}.json"
        return f"{path}?token={token}"
    auth = quote(ctx.auth.access_token or "", safe="")
    return f"{base}/rest/{action}.json?auth={auth}&token={token}"


def _file(ctx: CallContext, kind: str, object_id: int) -> tuple[bytes, str]:
    if kind == "template":
        template = ctx.state.templates.get(object_id)
        if template is None or template.is_deleted:
            raise PortalError("0", "Template not found", 404)
        return template.file, template.name
    document = ctx.state.documents.get(object_id)
    if document is None:
        raise PortalError("0", "Document not found", 404)
    if kind == "docx":
        return document.docx, document.title
    shown = ctx.portal.conversion.view(document)
    data = shown.pdf if kind == "pdf" else shown.image
    if data is None or shown.status != "ready":
        raise PortalError("0", "File not found", 404)
    return data, document.title


def _disposition(name: str) -> str:
    fallback = name.encode("ascii", "replace").decode("ascii").replace('"', "'")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _server(kind: str) -> Handler:
    action = ACTIONS[kind]

    def serve(ctx: CallContext, params: dict[str, Any]) -> web.Response:
        object_id = ctx.portal.signer.verify(params.get("token"), action, ctx.auth.identity)
        if object_id is None:
            raise PortalError("ACCESS_DENIED", "Access denied: invalid or foreign token", 403)
        data, title = _file(ctx, kind, object_id)
        headers = {"Content-Disposition": _disposition(f"{title}.{_SUFFIX[kind]}")}
        return web.Response(body=data, content_type=_TYPES[kind], headers=headers)

    serve.__doc__ = f"``{action}``: the file of a signed machine URL (GET)."
    return serve


def register_downloads(registry: MethodRegistry) -> None:
    """Register the four file endpoints (not batchable)."""
    for kind, action in ACTIONS.items():
        registry.register(action, _server(kind), batchable=False)
