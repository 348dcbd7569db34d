"""ASGI entry point: HTTP goes to Django, WebSockets to the apps' consumers.

WebSocket routes come from each app's ``routing.websocket_urlpatterns``. A connection must
come from an allowed origin (or, without one, carry an API token) and is authenticated
from the Django session or an ``Authorization: Token …`` header (``config.websocket``).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Django must be set up before the consumers (and their models) are imported.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from config.websocket import TokenAuthMiddleware, WebsocketOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WebsocketOriginValidator(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
