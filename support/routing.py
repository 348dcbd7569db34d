"""WebSocket routes of the support app (protocol in ``support.consumers``)."""

from django.urls import path

from support import consumers

websocket_urlpatterns = [
    path("ws/tickets/", consumers.TicketConsumer.as_asgi()),
    path("ws/agents/feed/", consumers.FeedConsumer.as_asgi()),
    path("ws/chat/", consumers.ChatConsumer.as_asgi()),
]
