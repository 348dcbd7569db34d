from django.urls import path

from integrations.api import views

links = views.GithubLinkViewSet

urlpatterns = [
    path("github-links/", links.as_view({"get": "list"}), name="api-github-link-list"),
    path(
        "github-links/<int:pk>/", links.as_view({"get": "retrieve"}), name="api-github-link-detail"
    ),
    path(
        "github-links/<int:pk>/approve/",
        links.as_view({"post": "approve"}),
        name="api-github-link-approve",
    ),
    path(
        "github-links/<int:pk>/reject/",
        links.as_view({"post": "reject"}),
        name="api-github-link-reject",
    ),
]
