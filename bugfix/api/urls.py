from django.urls import path

from bugfix.api import views

links = views.GithubLinkViewSet

urlpatterns = [
    # On support's ticket resource; bugfix answers it (support does not know bugfix).
    path(
        "tickets/<str:reference>/github/",
        views.TicketSendToGithubView.as_view(),
        name="api-ticket-github",
    ),
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
