"""ASGI entry point: HTTP goes to Django, WebSockets to the apps' consumers.

WebSocket routes come from each app's ``routing.websocket_urlpatterns``. A connection must
come from an allowed origin (or, without one, carry an API token) and is authenticated
from the Django session or an ``Authorization: Token …`` header (``config.websocket``).
A request announcing a body larger than any we accept is refused (413) before it is read.
With Sentry on (``SENTRY_DSN``), the WebSocket side reports its exceptions too.
"""

import json
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Django must be set up before the consumers (and their models) are imported.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from config.sentry import wrap_websocket  # noqa: E402
from config.websocket import TokenAuthMiddleware, WebsocketOriginValidator  # noqa: E402


class RefuseOversizedBodies:
    """Answers 413 to a request whose ``Content-Length`` is above
    ``core.limits.max_request_bytes()`` before reading its body: Django's ASGI handler
    spools the whole body to a file before any middleware can look at it, so a 100 MB
    upload would be received in full only to be refused (``config.middleware`` still
    refuses what arrives without a length)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        from core import limits

        length = dict(scope.get("headers") or ()).get(b"content-length", b"0")
        if length.isdigit() and int(length) > limits.max_request_bytes():
            await self._refuse(scope, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope, send) -> None:
        from config.errors import too_large_payload

        if scope.get("path", "").startswith("/api/"):
            body, kind = json.dumps(too_large_payload()).encode(), b"application/json"
        else:
            body = b"<!doctype html><title>Too large</title><h1>413 Request too large</h1>"
            kind = b"text/html; charset=utf-8"
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


application = ProtocolTypeRouter(
    {
        "http": RefuseOversizedBodies(django_asgi_app),
        "websocket": wrap_websocket(
            WebsocketOriginValidator(
                AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
            )
        ),
    }
)
