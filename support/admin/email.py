"""The email channel in admin: the support addresses and organizations' mail domains
(managers set them up), every mail that reached a door with what became of it (read-only;
the spam queue is its "spam" filter), the original mail downloadable by agents, and the
participants copied on tickets.

Actions call :func:`support.services.inbound_email_process`: "Not spam: process it" decides
a mail of the spam queue again without the spam check, "Process again" retries a mail a
failure left ``received``.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin_mixins import AgentAccessMixin
from core.errors import DomainError
from support import selectors, services
from support.models import InboundEmail, OrganizationDomain, SupportAddress, TicketParticipant


class ManagersSetUpMixin(AgentAccessMixin):
    """Agents see the setup; managers change it."""

    def has_change_permission(self, request, obj=None):
        return selectors.is_manager(request.user)

    def has_add_permission(self, request):
        return selectors.is_manager(request.user)


@admin.register(SupportAddress)
class SupportAddressAdmin(ManagersSetUpMixin, admin.ModelAdmin):
    list_display = ("email", "name", "team", "is_default", "is_active")
    list_filter = ("is_active", "team")
    search_fields = ("email", "name")
    fields = ("email", "name", "team", "is_default", "is_active")

    def save_model(self, request, obj, form, change):
        services.support_address_save(address=obj, actor=request.user)


@admin.register(OrganizationDomain)
class OrganizationDomainAdmin(ManagersSetUpMixin, admin.ModelAdmin):
    list_display = ("domain", "organization", "is_verified")
    list_filter = ("is_verified",)
    search_fields = ("domain", "organization__name")
    raw_id_fields = ("organization",)
    fields = ("domain", "organization", "is_verified")

    def save_model(self, request, obj, form, change):
        services.organization_domain_save(domain=obj, actor=request.user)


@admin.register(InboundEmail)
class InboundEmailAdmin(AgentAccessMixin, admin.ModelAdmin):
    list_display = (
        "received_at",
        "from_address",
        "subject",
        "door",
        "outcome",
        "reason",
        "ticket_link",
    )
    list_filter = ("outcome", "door")
    search_fields = ("from_address", "subject", "email_message_id", "ticket__reference")
    list_select_related = ("ticket",)
    date_hierarchy = "received_at"
    show_full_result_count = False
    actions = ("not_spam_action", "process_again_action")
    fields = (
        "received_at",
        "door",
        "outcome",
        "reason",
        "from_name",
        "from_address",
        "recipients",
        "subject",
        "email_message_id",
        "size",
        "ticket_link",
        "message",
        "original",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # mail comes in through the doors

    def has_change_permission(self, request, obj=None):
        return False  # what became of a mail is decided by the service only

    @admin.display(description="ticket", ordering="ticket__reference")
    def ticket_link(self, inbound):
        if inbound.ticket_id is None:
            return "—"
        url = reverse("admin:support_ticket_change", args=[inbound.ticket_id])
        return format_html('<a href="{}">{}</a>', url, inbound.ticket.reference)

    @admin.display(description="original mail")
    def original(self, inbound):
        url = reverse("admin:support_inboundemail_raw", args=[inbound.pk])
        return format_html('<a href="{}">Download (.eml, {} KB)</a>', url, inbound.size // 1024)

    # ---- the original mail --------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<int:pk>/raw/",
                self.admin_site.admin_view(self.raw_view),
                name="support_inboundemail_raw",
            ),
            *super().get_urls(),
        ]

    def raw_view(self, request, pk: int):
        """The mail as received, for agents only (it may hold anything the sender wrote)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        inbound = get_object_or_404(InboundEmail, pk=pk)
        try:
            stored = inbound.raw.open("rb")
        except (FileNotFoundError, ValueError) as missing:
            raise Http404("The original mail is no longer stored.") from missing
        return FileResponse(
            stored,
            as_attachment=True,
            filename=f"mail-{inbound.pk}.eml",
            content_type="message/rfc822",
        )

    # ---- actions ------------------------------------------------------------------------

    def _each(self, request, queryset, label: str, **kwargs):
        done, failed = 0, []
        for inbound in queryset:
            try:
                result = services.inbound_email_process(
                    inbound=inbound, actor=request.user, **kwargs
                )
            except DomainError as error:
                failed.append(f"{inbound}: {error.message}")
                continue
            done += 1
            if result.reason.startswith("Processing failed"):
                failed.append(f"{inbound}: {result.reason}")
        if done:
            self.message_user(request, f"{label}: {done} mail(s).", messages.SUCCESS)
        for line in failed:
            self.message_user(request, line, messages.ERROR)

    @admin.action(description="Not spam: process it")
    def not_spam_action(self, request, queryset):
        self._each(request, queryset, "Processed", not_spam=True)

    @admin.action(description="Process again")
    def process_again_action(self, request, queryset):
        self._each(request, queryset, "Processed again")


@admin.register(TicketParticipant)
class TicketParticipantAdmin(AgentAccessMixin, admin.ModelAdmin):
    """Who is copied on an email ticket (from the mail's To and Cc); read-only here."""

    list_display = ("email", "name", "ticket", "user", "created_at")
    search_fields = ("email", "name", "ticket__reference")
    list_select_related = ("ticket", "user")
    readonly_fields = ("ticket", "email", "name", "user", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
