"""The optional access token: when the service has one, every request needs it, as an
``Authorization: Bearer TOKEN`` header or a ``token=TOKEN`` query parameter (for ``<video>`` and
``<img>`` URLs, which cannot send headers). Only the page shell (``/`` and ``/static/``), which
holds no library data, loads without it, so the page can ask for the token."""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qs

PUBLIC_PATHS = ("/", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)


class TokenGuard:
    """ASGI middleware: 401 with a JSON ``detail`` for an HTTP request without the token.
    With ``token=None`` it passes everything through."""

    def __init__(self, app, token: str | None):
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope, receive, send):
        if self.token is None or scope["type"] not in ("http", "websocket") or self._public(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self._allowed(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"detail": "this server needs an access token: send 'Authorization: Bearer TOKEN' "
                                     "or add ?token=TOKEN"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b'Bearer realm="duomo"')]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _public(path: str) -> bool:
        return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)

    def _allowed(self, scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token):
                    return True
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return any(hmac.compare_digest(given.encode("latin-1"), self.token) for given in query.get("token", []))
