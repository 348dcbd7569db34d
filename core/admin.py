"""The outbox in admin: agents see what is pending or failed, with the error, and can
send an item again."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.text import Truncator

from core import outbox, roles
from core.models import OutboxItem


@admin.register(OutboxItem)
class OutboxItemAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "status", "attempts", "sends", "created_at", "error"]
    list_filter = ["status", "task"]
    search_fields = ["task", "last_error"]
    date_hierarchy = "created_at"
    actions = ["retry_now"]
    readonly_fields = [f.name for f in OutboxItem._meta.fields]
    list_per_page = 50

    def has_module_permission(self, request):
        return roles.is_agent(request.user)

    def has_view_permission(self, request, obj=None):
        return roles.is_agent(request.user)

    def has_change_permission(self, request, obj=None):
        return False  # rows change only through the outbox itself and the action

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not roles.is_agent(request.user):
            actions.pop("retry_now", None)
        return actions

    @admin.display(description="last error")
    def error(self, item: OutboxItem) -> str:
        return Truncator(item.last_error).chars(80)

    @admin.action(description="Send again now")
    def retry_now(self, request, queryset):
        ids = list(queryset.exclude(status=OutboxItem.Status.DONE).values_list("pk", flat=True))
        count = outbox.retry(ids)
        skipped = queryset.count() - count
        message = f"{count} item(s) queued again."
        if skipped:
            message += f" {skipped} already done were left alone."
        self.message_user(request, message, messages.SUCCESS)


# Sign-in lockouts (django-axes): managers and superusers see who is locked out and lift a
# lock by deleting its row ("Axes → Access attempts"); `manage.py axes_reset_username` too.
from axes.admin import AccessAttemptAdmin as _AxesAccessAttemptAdmin  # noqa: E402
from axes.models import AccessAttempt  # noqa: E402

if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(_AxesAccessAttemptAdmin):
    def has_module_permission(self, request):
        return roles.is_manager(request.user) and roles.is_agent(request.user)

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)
