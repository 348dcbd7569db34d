"""API of automation webhooks (being written)."""

urlpatterns: list = []
