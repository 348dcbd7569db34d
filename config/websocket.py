"""Guards in front of every WebSocket route: where the connection comes from, and who it is.

Origin. A browser always sends ``Origin`` with a WebSocket handshake, and cookies go with
it whatever page opened the socket; so a page of another site could otherwise read a
signed-in visitor's tickets. The origin must be one of ``ALLOWED_HOSTS`` (any scheme and
port, as Channels' ``AllowedHostsOriginValidator`` reads them) or of
``CSRF_TRUSTED_ORIGINS``. Programs that are not browsers usually send no origin: they are
let in only with an API token, so a session cookie alone never opens a socket without
one. A refused handshake answers HTTP 403 and is logged.

Identity. The Django session (``AuthMiddlewareStack``), or for API clients the DRF token of
``POST /api/auth/token/`` in an ``Authorization: Token <key>`` header, which then wins. A
token that matches no active user leaves the connection anonymous and sets
``scope["auth_error"]``; consumers turn both into an error frame and close.
"""

from __future__ import annotations

import logging
from urllib.parse import urlparse

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

logger = logging.getLogger(__name__)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def token_key(scope) -> str | None:
    """The key of an ``Authorization: Token <key>`` header, if the client sent one."""
    value = _header(scope, b"authorization")
    if not value:
        return None
    scheme, _, key = value.strip().partition(" ")
    if scheme.lower() != "token" or not key.strip():
        return None
    return key.strip()


def allowed_origins() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return [*hosts, *settings.CSRF_TRUSTED_ORIGINS]


class WebsocketOriginValidator(OriginValidator):
    """Refuse handshakes from other sites; let token clients without an origin in."""

    def __init__(self, application):
        self.application = application

    @property
    def allowed_origins(self) -> list[str]:  # read on each handshake: settings may change
        return allowed_origins()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("WebsocketOriginValidator only guards WebSocket connections.")
        origin = _header(scope, b"origin")
        if origin is None and token_key(scope) is not None:
            return await self.application(scope, receive, send)
        parsed = None
        if origin is not None:
            try:
                parsed = urlparse(origin)
            except ValueError:
                parsed = None
        if self.valid_origin(parsed):
            return await self.application(scope, receive, send)
        logger.warning(
            "WebSocket handshake refused: origin %r is not allowed",
            origin,
            extra={"path": scope.get("path"), "origin": origin},
        )
        return await WebsocketDenier()(scope, receive, send)


@database_sync_to_async
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


class TokenAuthMiddleware(BaseMiddleware):
    """``Authorization: Token <key>`` authenticates the connection (after the session)."""

    async def __call__(self, scope, receive, send):
        key = token_key(scope)
        if key is not None:
            scope = dict(scope)
            user = await _user_for_token(key)
            scope["user"] = user or AnonymousUser()
            if user is None:
                scope["auth_error"] = "The API token is not valid."
        return await super().__call__(scope, receive, send)
