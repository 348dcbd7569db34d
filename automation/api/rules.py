"""API of automation rules (being written)."""

urlpatterns: list = []
