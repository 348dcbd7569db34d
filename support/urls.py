from allauth.account import views as allauth_views
from django.urls import path

from support import views

app_name = "support"

urlpatterns = [
    # allauth's sign-up under its old name (templates link to "support:signup").
    path("accounts/signup/", allauth_views.signup, name="signup"),
    path("accounts/verify/resend/", views.verification_resend, name="verification-resend"),
    path("tickets/", views.ticket_list, name="ticket-list"),
    path("tickets/new/", views.ticket_new, name="ticket-new"),
    path("tickets/<str:reference>/", views.ticket_detail, name="ticket-detail"),
    path("tickets/<str:reference>/reply/", views.ticket_reply, name="ticket-reply"),
    path("tickets/<str:reference>/rate/", views.ticket_rate, name="ticket-rate"),
    path("tickets/<str:reference>/escalate/", views.ticket_escalate, name="ticket-escalate"),
    path("tickets/<str:reference>/resolve/", views.ticket_resolve, name="ticket-resolve"),
    path("tickets/<str:reference>/fields/", views.ticket_fields, name="ticket-fields"),
    path(
        "tickets/<str:reference>/actions/<int:pk>/confirm/",
        views.ticket_action_confirm,
        name="ticket-action-confirm",
    ),
    path(
        "tickets/<str:reference>/actions/<int:pk>/decline/",
        views.ticket_action_decline,
        name="ticket-action-decline",
    ),
    path(
        "tickets/<str:reference>/attachments/<int:pk>/",
        views.attachment_download,
        name="attachment",
    ),
]
