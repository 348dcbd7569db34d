"""Saved replies: canned responses any agent may write; saved through
``saved_reply_save`` (which records the author of a new one)."""

from __future__ import annotations

from django.contrib import admin

from core.admin_mixins import AgentAccessMixin
from support import services
from support.models import SavedReply


@admin.register(SavedReply)
class SavedReplyAdmin(AgentAccessMixin, admin.ModelAdmin):
    list_display = ("title", "new_status", "is_active")
    list_filter = ("is_active", "new_status")
    search_fields = ("title", "body")
    fields = ("title", "body", "new_status", "is_active")

    def save_model(self, request, obj, form, change):
        services.saved_reply_save(saved_reply=obj, actor=request.user)
