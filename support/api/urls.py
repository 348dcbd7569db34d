from django.urls import include, path

from support.api import actions, copilot, merge, traces, views

tickets = views.TicketViewSet
messages = views.TicketMessageViewSet

examples = views.TrainingExampleViewSet

urlpatterns = [
    path("", views.ApiRootView.as_view(), name="api-root"),
    path("me/", views.MeView.as_view(), name="api-me"),
    path("auth/token/", views.TokenView.as_view(), name="api-token"),
    path("sla/", include("support.api.sla")),
    path("custom-fields/", include("support.api.custom_fields")),
    path("tags/", include("support.api.tags")),
    path("tickets/", tickets.as_view({"get": "list", "post": "create"}), name="api-ticket-list"),
    path("tickets/bulk/", include("support.api.bulk")),
    path("tickets/export/", tickets.as_view({"get": "export"}), name="api-ticket-export"),
    path(
        "tickets/<str:reference>/",
        tickets.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="api-ticket-detail",
    ),
    *[
        path(
            f"tickets/<str:reference>/{url}/",
            tickets.as_view({"post": name}),
            name=f"api-ticket-{url}",
        )
        for name, url in [
            ("escalate", "escalate"),
            ("resolve", "resolve"),
            ("close", "close"),
            ("reopen", "reopen"),
            ("rate", "rate"),
            ("assign", "assign"),
            ("apply_saved_reply", "saved-reply"),
        ]
    ],
    path(
        "tickets/<str:reference>/copilot/",
        copilot.TicketCopilotView.as_view(),
        name="api-ticket-copilot",
    ),
    path(
        "tickets/<str:reference>/ai-traces/",
        traces.TicketAiTraceList.as_view(),
        name="api-ticket-ai-traces",
    ),
    path(
        "tickets/<str:reference>/merge/",
        merge.TicketMergeView.as_view(),
        name="api-ticket-merge",
    ),
    path(
        "tickets/<str:reference>/split/",
        merge.TicketSplitView.as_view(),
        name="api-ticket-split",
    ),
    path(
        "tickets/<str:reference>/actions/",
        actions.TicketActionRunList.as_view(),
        name="api-ticket-actions",
    ),
    path(
        "tickets/<str:reference>/actions/<int:pk>/confirm/",
        actions.ActionRunConfirmView.as_view(),
        name="api-ticket-action-confirm",
    ),
    path(
        "tickets/<str:reference>/actions/<int:pk>/decline/",
        actions.ActionRunDeclineView.as_view(),
        name="api-ticket-action-decline",
    ),
    path(
        "tickets/<str:reference>/messages/",
        messages.as_view({"get": "list", "post": "create"}),
        name="api-ticket-messages",
    ),
    path(
        "tickets/<str:reference>/events/",
        views.TicketEventViewSet.as_view({"get": "list"}),
        name="api-ticket-events",
    ),
    path(
        "saved-replies/",
        views.SavedReplyViewSet.as_view({"get": "list"}),
        name="api-saved-reply-list",
    ),
    path(
        "saved-replies/<int:pk>/",
        views.SavedReplyViewSet.as_view({"get": "retrieve"}),
        name="api-saved-reply-detail",
    ),
    path(
        "action-runs/<int:pk>/approve/",
        actions.ActionRunApproveView.as_view(),
        name="api-action-run-approve",
    ),
    path(
        "action-runs/<int:pk>/reject/",
        actions.ActionRunRejectView.as_view(),
        name="api-action-run-reject",
    ),
    path(
        "training-examples/",
        examples.as_view({"get": "list"}),
        name="api-training-example-list",
    ),
    path(
        "training-examples/<int:pk>/",
        examples.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="api-training-example-detail",
    ),
    path(
        "training-examples/<int:pk>/approve/",
        examples.as_view({"post": "approve"}),
        name="api-training-example-approve",
    ),
    path(
        "training-examples/<int:pk>/reject/",
        examples.as_view({"post": "reject"}),
        name="api-training-example-reject",
    ),
]
