"""All WebSocket routes, gathered from the apps that own consumers."""

from support.routing import websocket_urlpatterns as support_routes

websocket_urlpatterns = [*support_routes]
