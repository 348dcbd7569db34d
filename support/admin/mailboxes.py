"""IMAP mailboxes in admin: managers set them up (the password stays in the environment:
only the variable's name is here); everyone on staff sees when each was last read, its
watermark and last error, and may "Poll now" or "Test connection"."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages

from core.admin_mixins import AgentAccessMixin
from core.errors import DomainError
from integrations.email.imap import ImapError
from support import selectors, services
from support.email.imap_poll import BATCH, mailbox_poll, mailbox_test
from support.models import Mailbox


class MailboxForm(forms.ModelForm):
    class Meta:
        model = Mailbox
        fields = (
            "name",
            "is_active",
            "host",
            "port",
            "security",
            "username",
            "password_env",
            "folder",
            "after_processing",
            "move_to",
            "address",
        )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("after_processing") == Mailbox.AfterProcessing.MOVE:
            move_to = (cleaned.get("move_to") or "").strip()
            if not move_to:
                self.add_error("move_to", "Name the folder processed mail is moved to.")
            elif move_to == (cleaned.get("folder") or "").strip():
                self.add_error("move_to", "Choose another folder than the one read.")
        return cleaned


@admin.register(Mailbox)
class MailboxAdmin(AgentAccessMixin, admin.ModelAdmin):
    form = MailboxForm
    list_display = (
        "name",
        "username",
        "host",
        "folder",
        "is_active",
        "last_polled_at",
        "watermark",
        "error",
    )
    list_filter = ("is_active",)
    search_fields = ("name", "host", "username")
    list_select_related = ("address",)
    actions = ("poll_now_action", "test_connection_action")
    readonly_fields = ("last_polled_at", "uidvalidity", "last_uid", "last_error")
    fieldsets = (
        (None, {"fields": ("name", "is_active", "address")}),
        (
            "Server",
            {
                "fields": ("host", "port", "security", "username", "password_env"),
                "description": "The password is read from the environment variable named "
                "here, in the web and worker processes; it is never stored or shown.",
            },
        ),
        ("Mail", {"fields": ("folder", "after_processing", "move_to")}),
        ("Last poll", {"fields": readonly_fields}),
    )

    def has_change_permission(self, request, obj=None):
        return selectors.is_manager(request.user)

    def has_add_permission(self, request):
        return selectors.is_manager(request.user)

    @admin.display(description="watermark (UID)", ordering="last_uid")
    def watermark(self, mailbox):
        return f"{mailbox.last_uid} (UIDVALIDITY {mailbox.uidvalidity or '—'})"

    @admin.display(description="last error")
    def error(self, mailbox):
        return mailbox.last_error[:120] or "—"

    def save_model(self, request, obj, form, change):
        services.mailbox_save(mailbox=obj, actor=request.user)

    # ---- actions ------------------------------------------------------------------------

    @admin.action(description="Poll now")
    def poll_now_action(self, request, queryset):
        """Read up to one batch of new mail of each chosen mailbox, here and now; behind
        PgBouncer (``DATABASE_PGBOUNCER``) a worker polls it instead, since the poll's
        session lock cannot be held through transaction pooling."""
        for mailbox in queryset:
            if settings.DATABASE_PGBOUNCER:
                services.mailbox_queue_poll(mailbox=mailbox, actor=request.user)
                self.message_user(
                    request,
                    f"{mailbox.name}: a worker polls it now; new mail appears in a moment.",
                    messages.SUCCESS,
                )
                continue
            read = mailbox_poll(mailbox.pk, limit=BATCH)
            mailbox.refresh_from_db()
            if mailbox.last_error:
                self.message_user(request, f"{mailbox.name}: {mailbox.last_error}", messages.ERROR)
            else:
                self.message_user(
                    request, f"{mailbox.name}: {read} new mail read.", messages.SUCCESS
                )

    @admin.action(description="Test connection")
    def test_connection_action(self, request, queryset):
        for mailbox in queryset:
            try:
                found = mailbox_test(mailbox)
            except (ImapError, DomainError) as error:
                self.message_user(request, f"{mailbox.name}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{mailbox.name}: {found}", messages.SUCCESS)
