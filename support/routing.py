"""WebSocket routes of the support app (live conversations, agent feed, chat)."""

websocket_urlpatterns: list = []
