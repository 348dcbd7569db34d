"""The copilot panel of the ticket page: summarize, suggest a reply, rewrite the draft in
the reply box, translate it to the customer's language. The panel's script
(``static/js/copilot.js``) calls ``POST /api/tickets/{reference}/copilot/`` with the
session; the result is shown in the panel and copied into the reply box only when the
agent asks. With the offline provider, rewrite and translate are shown disabled with the
reason. ``CopilotCall`` rows (what each call cost, whether it worked) are listed read-only."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse

from core.admin_mixins import AgentAccessMixin
from support.admin.tickets import TICKET_PAGE_CONTEXT
from support.ai import copilot
from support.models import CopilotCall


def copilot_context(ticket, request) -> dict:
    language = copilot.customer_language(ticket)
    return {
        "copilot": {
            "url": reverse("api-ticket-copilot", args=[ticket.reference]),
            "language": language or "",
            "language_name": copilot.language_name(language) if language else "",
            "tones": [
                ("friendlier", "Friendlier"),
                ("formal", "More formal"),
                ("shorter", "Shorter"),
            ],
            "rewrite_disabled": copilot.offline_reason(CopilotCall.Kind.REWRITE),
            "translate_disabled": copilot.offline_reason(CopilotCall.Kind.TRANSLATE),
        }
    }


TICKET_PAGE_CONTEXT.append(copilot_context)


@admin.register(CopilotCall)
class CopilotCallAdmin(AgentAccessMixin, admin.ModelAdmin):
    """Every copilot call with its model, tokens, cost and latency: read-only (the copilot
    records them itself)."""

    list_display = (
        "created_at",
        "ticket",
        "user",
        "kind",
        "ai_model",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "latency_ms",
        "succeeded",
    )
    list_filter = ("kind", "succeeded", "provider", "ai_model")
    list_select_related = ("ticket", "user")
    search_fields = ("ticket__reference", "user__username", "error")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
