"""Escalations and the event log: read-only here. Escalations are made from the ticket
page (through ``ticket_escalate``); the event log is append-only and nobody changes it."""

from __future__ import annotations

from django.contrib import admin

from core.admin_mixins import AgentAccessMixin
from support.models import Escalation, TicketEvent


@admin.register(Escalation)
class EscalationAdmin(AgentAccessMixin, admin.ModelAdmin):
    list_display = ("ticket", "kind", "team", "assignee", "is_resolved", "created_at")
    list_filter = ("is_resolved", "kind", "team")
    list_select_related = ("ticket", "team", "assignee")
    search_fields = ("ticket__reference", "reason")
    readonly_fields = (
        "ticket",
        "kind",
        "reason",
        "topic",
        "ai_attempt",
        "team",
        "assignee",
        "created_by",
        "is_resolved",
        "resolved_at",
        "created_at",
    )

    def has_add_permission(self, request):
        return False  # escalate from the ticket page, through the service


@admin.register(TicketEvent)
class TicketEventAdmin(AgentAccessMixin, admin.ModelAdmin):
    list_display = ("created_at", "ticket", "kind", "description", "actor", "actor_kind")
    list_filter = ("kind", "actor_kind")
    list_select_related = ("ticket", "actor")
    search_fields = ("ticket__reference",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
