"""The ticket queue and the ticket page of the agent workspace.

The changelist is the working queue (filters: state, assignee, SLA); its bulk actions
call one service per ticket. The ticket page shows the conversation (internal notes
marked), a reply box with saved replies, the escalations and the event log, and a button
per action: each button is one entry of :data:`TICKET_ACTIONS`, which calls one service.
No field of a ticket is edited directly. The live feed ("Live feed" in the header: new,
escalated and SLA-at-risk tickets) is a view of this admin too; the ticket page and the
feed update over WebSocket.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import truncatechars
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from core.admin_mixins import AgentAccessMixin
from core.errors import DomainError
from support import presence, selectors, services
from support.admin import bulk as queue_bulk
from support.models import Escalation, SavedReply, Tag, Ticket, TicketPriority

# ======================================================================================
# Queue filters
# ======================================================================================


class AssigneeFilter(admin.SimpleListFilter):
    title = "assignee"
    parameter_name = "assignee"

    def lookups(self, request, model_admin):
        staff = get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username")
        return [
            ("mine", "Mine"),
            ("unassigned", "Unassigned"),
            *[(str(u.pk), u.get_full_name() or u.username) for u in staff],
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "mine":
            return queryset.filter(assignee=request.user)
        if value == "unassigned":
            return queryset.filter(assignee__isnull=True)
        if value and value.isdigit():
            return queryset.filter(assignee_id=int(value))
        return queryset


class SlaFilter(admin.SimpleListFilter):
    title = "SLA"
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return [
            ("at_risk", "At risk"),
            ("breached", "Breached"),
            ("paused", "Paused (awaiting the customer)"),
            ("due_4h", "Due within 4 hours"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "at_risk":
            return queryset.filter(selectors.sla_at_risk_filter(now))
        if self.value() == "paused":
            return queryset.sla_paused()
        if self.value() == "breached":
            return queryset.sla_breached(now)
        if self.value() == "due_4h":
            return queryset.open().filter(
                sla_due_at__gte=now, sla_due_at__lt=now + timezone.timedelta(hours=4)
            )
        return queryset


class OpenFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("done", "Resolved or closed")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.open()
        if self.value() == "done":
            return queryset.exclude(pk__in=queryset.open().values("pk"))
        return queryset


# ======================================================================================
# Tickets
# ======================================================================================


@admin.register(Ticket)
class TicketAdmin(AgentAccessMixin, admin.ModelAdmin):
    change_form_template = "admin/support/ticket/change_form.html"
    list_display = (
        "reference",
        "subject_short",
        "requester_email",
        "organization",
        "status_badge",
        "priority_badge",
        "type",
        "channel",
        "assignee",
        "age",
        "sla",
        queue_bulk.tags_column,
    )
    list_display_links = ("reference", "subject_short")
    list_filter = (
        OpenFilter,
        "status",
        "type",
        "priority",
        AssigneeFilter,
        SlaFilter,
        "channel",
        "team",
        queue_bulk.TagFilter,
        queue_bulk.CustomFieldFilter,
    )
    search_fields = ("reference", "subject", "requester__email", "requester__username")
    list_select_related = ("requester", "organization", "assignee")
    sortable_by = ("reference", "age", "sla", "priority_badge", "status_badge")
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False
    # Each through ``support.bulk.run`` (one service per ticket), with a summary page.
    actions = queue_bulk.ACTIONS
    readonly_fields = (
        "reference",
        "subject",
        "description",
        "type",
        "status",
        "priority",
        "channel",
        "requester",
        "organization",
        "assignee",
        "team",
        "ai_confidence",
        "sentiment",
        "satisfaction_rating",
        "satisfaction_comment",
        "reopened_count",
        "created_at",
        "updated_at",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "sla_due_at",
        "first_response_due_at",
        "next_response_due_at",
        "resolution_due_at",
        "sla_paused_at",
        "sla_at_risk_at",
        "sla_breached_at",
    )
    fieldsets = (
        (None, {"fields": ("reference", "subject", "status", "priority", "type", "channel")}),
        ("People", {"fields": ("requester", "organization", "assignee", "team")}),
        (
            "AI and satisfaction",
            {
                "fields": (
                    "ai_confidence",
                    "sentiment",
                    "satisfaction_rating",
                    "satisfaction_comment",
                )
            },
        ),
        (
            "Times",
            {
                "classes": ("collapse",),
                "fields": (
                    "created_at",
                    "first_response_at",
                    "sla_due_at",
                    "first_response_due_at",
                    "next_response_due_at",
                    "resolution_due_at",
                    "sla_paused_at",
                    "sla_at_risk_at",
                    "sla_breached_at",
                    "resolved_at",
                    "closed_at",
                    "updated_at",
                    "reopened_count",
                ),
            },
        ),
    )

    # ---- changelist columns -----------------------------------------------------------

    def get_queryset(self, request):
        # The tags column: one query for the page's tags, not one per row.
        tags = Prefetch("tags", queryset=Tag.objects.only("id", "name"))
        return super().get_queryset(request).prefetch_related(tags)

    def get_list_display(self, request):
        # The custom fields column, with the active definitions read once per request.
        return (*super().get_list_display(request), queue_bulk.fields_column_for(request))

    @admin.display(description="subject", ordering="subject")
    def subject_short(self, ticket):
        return truncatechars(ticket.subject, 60)

    @admin.display(description="requester", ordering="requester__email")
    def requester_email(self, ticket):
        return ticket.requester.email or ticket.requester.username

    @admin.display(description="status", ordering="status")
    def status_badge(self, ticket):
        return format_html(
            '<span class="hd-badge hd-status-{}">{}</span>',
            ticket.status,
            ticket.get_status_display(),
        )

    @admin.display(description="priority", ordering="priority")
    def priority_badge(self, ticket):
        return format_html(
            '<span class="hd-badge hd-priority-{}">{}</span>',
            ticket.priority,
            ticket.get_priority_display(),
        )

    @admin.display(description="age", ordering="created_at")
    def age(self, ticket):
        return timesince(ticket.created_at)

    @admin.display(description="SLA due", ordering="sla_due_at")
    def sla(self, ticket):
        if ticket.sla_paused and ticket.sla_due_at is None:
            return format_html(
                '<span class="hd-paused" title="since {}">paused</span>', ticket.sla_paused_at
            )
        if ticket.sla_due_at is None:
            return "—"
        now = timezone.now()
        if ticket.sla_breached(now):
            return format_html(
                '<span class="hd-breached" title="{}">breached</span>', ticket.sla_due_at
            )
        if not ticket.is_open:
            return "met"
        return format_html(
            '<span title="{}">in {}</span>', ticket.sla_due_at, timesince(now, ticket.sla_due_at)
        )

    # ---- permissions -------------------------------------------------------------------

    def has_add_permission(self, request):
        return False  # tickets are opened by customers (portal, API, chat) through services

    # ---- bulk actions (each ticket through its service) -------------------------------
    # The queue's own actions are in ``support.admin.bulk``; other apps' (bugfix) use this.

    def _bulk(self, request, queryset, label, fn):
        done, failed = 0, []
        for ticket in queryset:
            try:
                fn(ticket)
                done += 1
            except DomainError as error:
                failed.append(f"{ticket.reference}: {error.message}")
        if done:
            self.message_user(request, f"{label}: {done} ticket(s).", messages.SUCCESS)
        for line in failed:
            self.message_user(request, line, messages.ERROR)

    # ---- ticket page --------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<int:pk>/act/<str:action>/",
                self.admin_site.admin_view(self.act_view),
                name="support_ticket_act",
            ),
            path("feed/", self.admin_site.admin_view(self.feed_view), name="support_ticket_feed"),
            *super().get_urls(),
        ]

    def feed_view(self, request):
        """The live feed: new, escalated and SLA-at-risk tickets with counts, filtered to
        mine or unassigned. Rendered complete (a reload is enough without WebSocket);
        static/js/feed.js then keeps it current over ``/ws/agents/feed/``."""
        if not selectors.is_agent(request.user):
            return HttpResponseRedirect(reverse("admin:index"))
        feed_filter = request.GET.get("filter", "all")
        if feed_filter not in selectors.FEED_FILTERS:
            feed_filter = "all"
        now = timezone.now()
        columns = selectors.feed_tickets(user=request.user, filter=feed_filter, now=now)
        counts = selectors.feed_counts_for(
            selectors.feed_counts(now=now), filter=feed_filter, user_id=request.user.pk
        )
        titles = {"new": "New", "escalated": "Escalated", "at_risk": "SLA at risk"}
        context = {
            **self.admin_site.each_context(request),
            "title": "Live feed",
            "opts": self.model._meta,
            "filter": feed_filter,
            "filters": [("all", "All"), ("mine", "Mine"), ("unassigned", "Unassigned")],
            "columns": [
                {"key": key, "title": titles[key], "count": counts[key], "tickets": tickets}
                for key, tickets in columns.items()
            ],
            "at_risk_hours": settings.HELPDESK_SLA_AT_RISK_HOURS,
            "now": now,
        }
        return TemplateResponse(request, "admin/support/ticket/feed.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        ticket = get_object_or_404(Ticket, pk=object_id)
        agents = get_user_model().objects.filter(is_staff=True, is_active=True)
        extra_context = {
            **(extra_context or {}),
            "ticket": ticket,
            "conversation": selectors.message_list(user=request.user, ticket=ticket),
            "events": selectors.event_list(user=request.user, ticket=ticket),
            "escalations": ticket.escalations.select_related("team", "assignee"),
            "saved_replies": selectors.saved_reply_list(),
            "agents": agents.order_by("username"),
            "priorities": TicketPriority.choices,
            "escalation_kinds": Escalation.Kind.choices,
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": request.user.is_superuser,
        }
        for extra in TICKET_PAGE_CONTEXT:
            extra_context.update(extra(ticket, request))
        return super().change_view(request, object_id, form_url, extra_context)

    def act_view(self, request, pk, action):
        """One button of the ticket page: run its service, report, go back."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not selectors.is_agent(request.user) or action not in TICKET_ACTIONS:
            return HttpResponseRedirect(reverse("admin:index"))
        ticket = get_object_or_404(Ticket, pk=pk)
        try:
            note = TICKET_ACTIONS[action](ticket, request)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, note, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:support_ticket_change", args=[ticket.pk]))


# ======================================================================================
# The ticket page's buttons: one service each
# ======================================================================================


def _ai_rerun(ticket, request) -> str:
    if services.ticket_request_ai(ticket=ticket, actor=request.user) == services.AI_ANALYSIS:
        return "AI analysis queued."
    return "AI draft requested: it will appear as an internal note."


def _assign_to_me(ticket, request) -> str:
    services.ticket_assign(ticket=ticket, assignee=request.user, actor=request.user)
    return "Assigned to you."


def _unassign(ticket, request) -> str:
    services.ticket_assign(ticket=ticket, assignee=None, actor=request.user)
    return "Unassigned."


def _assign(ticket, request) -> str:
    chosen = request.POST.get("assignee") or 0
    assignee = get_user_model().objects.filter(pk=chosen).first()
    if assignee is None:
        raise DomainError("Choose whom to assign.")
    services.ticket_assign(ticket=ticket, assignee=assignee, actor=request.user)
    return f"Assigned to {assignee}."


def _escalate(ticket, request) -> str:
    escalation = services.ticket_escalate(
        ticket=ticket,
        kind=request.POST.get("kind") or Escalation.Kind.COMPLEX,
        reason=request.POST.get("reason", ""),
        topic=request.POST.get("topic", ""),
        actor=request.user,
    )
    return f"Escalated to {escalation.team or 'people'}."


def _resolve(ticket, request) -> str:
    services.ticket_resolve(ticket=ticket, actor=request.user)
    return "Resolved; the customer was asked to rate it."


def _close(ticket, request) -> str:
    services.ticket_close(ticket=ticket, actor=request.user)
    return "Closed."


def _reopen(ticket, request) -> str:
    services.ticket_reopen(ticket=ticket, actor=request.user)
    return "Reopened."


def _priority(ticket, request) -> str:
    services.ticket_change_priority(
        ticket=ticket, priority=request.POST.get("priority", ""), actor=request.user
    )
    return "Priority changed."


def _saved_reply(ticket, request) -> str:
    saved = SavedReply.objects.filter(pk=request.POST.get("saved_reply") or 0).first()
    if saved is None:
        raise DomainError("Choose a saved reply.")
    services.saved_reply_apply(ticket=ticket, saved_reply=saved, agent=request.user)
    return f"Sent “{saved.title}”."


def _reply(ticket, request) -> str:
    """A reply or an internal note; "and resolve" (replies only) in the same change.

    A reply to the customer written before a message the agent has not seen (the form's
    ``seen_message_id``) is not sent unless ``confirm_send`` says to send it anyway; a
    refused reply stays in the reply box (``support.presence``)."""
    internal = request.POST.get("is_internal") == "on"
    resolve = request.POST.get("and_resolve") == "on" and not internal
    body = request.POST.get("body", "")
    try:
        if not internal:
            presence.reply_check(
                ticket=ticket,
                agent=request.user,
                seen_message_id=request.POST.get("seen_message_id"),
                confirmed=request.POST.get("confirm_send") == "1",
            )
        services.message_reply(
            ticket=ticket,
            author=request.user,
            body=body,
            is_internal=internal,
            attachments=request.FILES.getlist("attachments"),
            resolve=resolve,
        )
    except DomainError:
        presence.draft_keep(request, ticket=ticket, body=body, internal=internal, resolve=resolve)
        raise
    if resolve:
        return "Reply sent and ticket resolved."
    return "Internal note added." if internal else "Reply sent."


#: More of the ticket page's context, one function per workspace area (tags, custom
#: fields, merge and split, presence, copilot: ``support.admin.<area>`` appends its own):
#: each takes the ticket and the request and returns a dict for the template.
TICKET_PAGE_CONTEXT: list[Callable[[Ticket, HttpRequest], dict]] = []

#: The ticket page's buttons (``admin:support_ticket_act``, ``<pk>/act/<name>/``): each
#: runs one service with the POSTed form and says what it did (a DomainError says why not).
#: The workspace areas (``support.admin.tags`` …) add their own entries.
TICKET_ACTIONS: dict[str, Callable[[Ticket, HttpRequest], str]] = {
    "ai_rerun": _ai_rerun,
    "assign_to_me": _assign_to_me,
    "unassign": _unassign,
    "assign": _assign,
    "escalate": _escalate,
    "resolve": _resolve,
    "close": _close,
    "reopen": _reopen,
    "priority": _priority,
    "saved_reply": _saved_reply,
    "reply": _reply,
}
