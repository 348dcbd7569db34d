"""bugfix's pages outside the API: GitHub's webhook (its address is configured on GitHub:
it keeps the path it had under integrations)."""

from django.urls import path

from bugfix import webhooks

urlpatterns = [
    path("integrations/github/webhook/", webhooks.webhook, name="github-webhook"),
]
