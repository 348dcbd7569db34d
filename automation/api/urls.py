"""Staff API of automation: rules, outbound webhook endpoints and their deliveries."""

from django.urls import include, path

urlpatterns = [
    path("", include("automation.api.rules")),
    path("", include("automation.api.webhooks")),
]
