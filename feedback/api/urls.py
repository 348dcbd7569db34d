from django.urls import path

from feedback.api import views

requests = views.FeatureRequestViewSet

urlpatterns = [
    path(
        "feature-requests/",
        requests.as_view({"get": "list", "post": "create"}),
        name="api-feature-request-list",
    ),
    path(
        "feature-requests/<int:pk>/",
        requests.as_view({"get": "retrieve"}),
        name="api-feature-request-detail",
    ),
    path(
        "feature-requests/<int:pk>/vote/",
        requests.as_view({"post": "vote", "delete": "vote"}),
        name="api-feature-request-vote",
    ),
    path(
        "feature-requests/<int:pk>/status/",
        requests.as_view({"post": "change_status"}),
        name="api-feature-request-status",
    ),
    path(
        "feature-requests/<int:pk>/merge/",
        requests.as_view({"post": "merge"}),
        name="api-feature-request-merge",
    ),
    path(
        "feature-requests/<int:pk>/history/",
        # The whole history, oldest first: neither paginated nor filtered.
        requests.as_view({"get": "history"}, pagination_class=None, filter_backends=[]),
        name="api-feature-request-history",
    ),
]
