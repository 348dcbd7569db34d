"""The agent workspace in Django admin.

The ticket changelist is the working queue; the ticket page shows the conversation
(internal notes marked), a reply box with saved replies, the escalations and the event
log, and buttons for every action; both the ticket page and the live feed (new,
escalated and SLA-at-risk tickets, "Live feed" in the header) update over WebSocket.
Every action calls a service; no field of a ticket is edited directly. Staff (agents)
work here without per-model permissions; only superusers may delete, and nobody may
change the event log.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import truncatechars
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from config.errors import DomainError
from support import pii, selectors, services
from support.models import (
    CustomerProfile,
    Escalation,
    Organization,
    SavedReply,
    SlaPolicy,
    Team,
    TeamMembership,
    Ticket,
    TicketEvent,
    TicketPriority,
    TrainingExample,
)


class AgentAccessMixin:
    """Staff can view and work; only superusers delete."""

    def has_module_permission(self, request):
        return selectors.is_agent(request.user)

    def has_view_permission(self, request, obj=None):
        return selectors.is_agent(request.user)

    def has_change_permission(self, request, obj=None):
        return selectors.is_agent(request.user)

    def has_add_permission(self, request):
        return selectors.is_agent(request.user)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


class RevenueForManagersMixin:
    """Revenue (an organization's MRR) is the managers' business: for anyone else the
    ``revenue_fields`` leave the changelist, the form, the filters and the URL lookups
    (``?mrr__gte=`` would tell the figure by bisection)."""

    revenue_fields: tuple[str, ...] = ()

    def _hide_revenue(self, request) -> bool:
        return not selectors.is_manager(request.user)

    def _without_revenue(self, request, names):
        if not self._hide_revenue(request):
            return names
        return [name for name in names if name not in self.revenue_fields]

    def get_list_display(self, request):
        return self._without_revenue(request, super().get_list_display(request))

    def get_list_filter(self, request):
        return self._without_revenue(request, super().get_list_filter(request))

    def get_fields(self, request, obj=None):
        return self._without_revenue(request, super().get_fields(request, obj))

    def get_readonly_fields(self, request, obj=None):
        return self._without_revenue(request, super().get_readonly_fields(request, obj))

    def get_exclude(self, request, obj=None):
        if not self._hide_revenue(request):
            return super().get_exclude(request, obj)
        return [*(super().get_exclude(request, obj) or ()), *self.revenue_fields]

    def lookup_allowed(self, lookup, value, request):
        if self._hide_revenue(request) and any(
            part in {"mrr", *self.revenue_fields} for part in lookup.split("__")
        ):
            return False
        return super().lookup_allowed(lookup, value, request)


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
        return [("breached", "Breached"), ("due_4h", "Due within 4 hours")]

    def queryset(self, request, queryset):
        now = timezone.now()
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

TICKET_ACTIONS = (
    "ai_rerun",
    "assign_to_me",
    "unassign",
    "escalate",
    "resolve",
    "close",
    "reopen",
    "priority",
    "reply",
    "saved_reply",
    "assign",
)


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
        "assignee",
        "age",
        "sla",
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
    )
    search_fields = ("reference", "subject", "requester__email", "requester__username")
    list_select_related = ("requester", "organization", "assignee")
    sortable_by = ("reference", "age", "sla", "priority_badge", "status_badge")
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False
    actions = (
        "assign_to_me_action",
        "resolve_action",
        "close_action",
        "mark_urgent_action",
        "send_to_github_action",
    )
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
                    "resolved_at",
                    "closed_at",
                    "updated_at",
                    "reopened_count",
                ),
            },
        ),
    )

    # ---- changelist columns -----------------------------------------------------------

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

    @admin.action(description="Assign to me")
    def assign_to_me_action(self, request, queryset):
        self._bulk(
            request,
            queryset,
            "Assigned to you",
            lambda t: services.ticket_assign(ticket=t, assignee=request.user, actor=request.user),
        )

    @admin.action(description="Resolve")
    def resolve_action(self, request, queryset):
        self._bulk(
            request,
            queryset,
            "Resolved",
            lambda t: services.ticket_resolve(ticket=t, actor=request.user),
        )

    @admin.action(description="Close")
    def close_action(self, request, queryset):
        self._bulk(
            request,
            queryset,
            "Closed",
            lambda t: services.ticket_close(ticket=t, actor=request.user),
        )

    @admin.action(description="Send to GitHub as a bug")
    def send_to_github_action(self, request, queryset):
        from integrations import services as integration_services

        def send(ticket):
            if ticket.type != "bug":
                services.ticket_update(ticket=ticket, actor=request.user, type="bug")
            integration_services.github_link_request(ticket=ticket, actor=request.user)

        self._bulk(request, queryset, "Sent to GitHub", send)

    @admin.action(description="Set priority to urgent")
    def mark_urgent_action(self, request, queryset):
        self._bulk(
            request,
            queryset,
            "Now urgent",
            lambda t: services.ticket_change_priority(
                ticket=t, priority="urgent", actor=request.user
            ),
        )

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
        return super().change_view(request, object_id, form_url, extra_context)

    def act_view(self, request, pk, action):
        """One button of the ticket page: run its service, report, go back."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not selectors.is_agent(request.user) or action not in TICKET_ACTIONS:
            return HttpResponseRedirect(reverse("admin:index"))
        ticket = get_object_or_404(Ticket, pk=pk)
        data, user = request.POST, request.user
        try:
            note = self._act(action, ticket, data, user, request.FILES.getlist("attachments"))
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, note, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:support_ticket_change", args=[ticket.pk]))

    def _act(self, action, ticket, data, user, files) -> str:
        if action == "ai_rerun":
            from core.outbox import schedule_after_commit

            if ticket.status == "new" and ticket.assignee_id is None:
                schedule_after_commit("support.tasks.analyze_ticket", ticket.pk)
                return "AI analysis queued."
            schedule_after_commit("support.tasks.draft_answer", ticket.pk)
            return "AI draft requested: it will appear as an internal note."
        if action == "assign_to_me":
            services.ticket_assign(ticket=ticket, assignee=user, actor=user)
            return "Assigned to you."
        if action == "unassign":
            services.ticket_assign(ticket=ticket, assignee=None, actor=user)
            return "Unassigned."
        if action == "assign":
            assignee = get_user_model().objects.filter(pk=data.get("assignee") or 0).first()
            if assignee is None:
                raise DomainError("Choose whom to assign.")
            services.ticket_assign(ticket=ticket, assignee=assignee, actor=user)
            return f"Assigned to {assignee}."
        if action == "escalate":
            escalation = services.ticket_escalate(
                ticket=ticket,
                kind=data.get("kind") or Escalation.Kind.COMPLEX,
                reason=data.get("reason", ""),
                topic=data.get("topic", ""),
                actor=user,
            )
            return f"Escalated to {escalation.team or 'people'}."
        if action == "resolve":
            services.ticket_resolve(ticket=ticket, actor=user)
            return "Resolved; the customer was asked to rate it."
        if action == "close":
            services.ticket_close(ticket=ticket, actor=user)
            return "Closed."
        if action == "reopen":
            services.ticket_reopen(ticket=ticket, actor=user)
            return "Reopened."
        if action == "priority":
            services.ticket_change_priority(
                ticket=ticket, priority=data.get("priority", ""), actor=user
            )
            return "Priority changed."
        if action == "saved_reply":
            saved = SavedReply.objects.filter(pk=data.get("saved_reply") or 0).first()
            if saved is None:
                raise DomainError("Choose a saved reply.")
            services.saved_reply_apply(ticket=ticket, saved_reply=saved, agent=user)
            return f"Sent “{saved.title}”."
        # reply
        internal = data.get("is_internal") == "on"
        services.message_add(
            ticket=ticket,
            author=user,
            body=data.get("body", ""),
            is_internal=internal,
            attachments=files,
        )
        if data.get("and_resolve") == "on" and not internal:
            services.ticket_resolve(ticket=ticket, actor=user)
            return "Reply sent and ticket resolved."
        return "Internal note added." if internal else "Reply sent."


# ======================================================================================
# Escalations, events, customers, teams, saved replies, SLA
# ======================================================================================


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


class CustomerProfileInline(admin.TabularInline):
    model = CustomerProfile
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(RevenueForManagersMixin, AgentAccessMixin, admin.ModelAdmin):
    revenue_fields = ("mrr",)
    list_display = ("name", "plan", "mrr", "sla_policy", "member_count", "open_tickets")
    list_filter = ("plan", "sla_policy")
    search_fields = ("name",)
    inlines = [CustomerProfileInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("sla_policy")
            .annotate(
                member_count=Count("members", distinct=True),
                open_ticket_count=Count(
                    "tickets",
                    filter=Q(
                        tickets__status__in=[
                            "new",
                            "analyzing",
                            "ai_responding",
                            "awaiting_customer",
                            "escalated",
                        ]
                    ),
                    distinct=True,
                ),
            )
        )

    @admin.display(description="members", ordering="member_count")
    def member_count(self, organization):
        return organization.member_count

    @admin.display(description="open tickets", ordering="open_ticket_count")
    def open_tickets(self, organization):
        return organization.open_ticket_count

    def has_change_permission(self, request, obj=None):
        return selectors.is_manager(request.user)  # plan and MRR are the managers' business

    def has_add_permission(self, request):
        return selectors.is_manager(request.user)


class TeamMembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 1
    raw_id_fields = ("user",)
    readonly_fields = ("last_assigned_at",)


@admin.register(Team)
class TeamAdmin(AgentAccessMixin, admin.ModelAdmin):
    list_display = ("name", "handles", "is_default", "round_robin", "escalation_contact")
    inlines = [TeamMembershipInline]

    def has_change_permission(self, request, obj=None):
        return selectors.is_manager(request.user)

    def has_add_permission(self, request):
        return selectors.is_manager(request.user)


@admin.register(SavedReply)
class SavedReplyAdmin(AgentAccessMixin, admin.ModelAdmin):
    list_display = ("title", "new_status", "is_active")
    list_filter = ("is_active", "new_status")
    search_fields = ("title", "body")
    fields = ("title", "body", "new_status", "is_active")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(SlaPolicy)
class SlaPolicyAdmin(AgentAccessMixin, admin.ModelAdmin):
    list_display = ("name", "urgent_hours", "high_hours", "normal_hours", "low_hours", "is_default")

    def has_change_permission(self, request, obj=None):
        return selectors.is_manager(request.user)

    def has_add_permission(self, request):
        return selectors.is_manager(request.user)


# ======================================================================================
# Training examples: the review queue
# ======================================================================================


class TrainingExampleForm(forms.ModelForm):
    """The reviewer's edits; the button pressed decides what else is required."""

    class Meta:
        model = TrainingExample
        fields = ["anonymized_question", "anonymized_answer", "quality_score", "review_note"]
        widgets = {
            "anonymized_question": forms.Textarea(attrs={"rows": 10, "cols": 60}),
            "anonymized_answer": forms.Textarea(attrs={"rows": 10, "cols": 60}),
            "review_note": forms.Textarea(attrs={"rows": 2, "cols": 60}),
        }

    def clean(self):
        data = super().clean()
        if "_approve" in self.data:
            if not data.get("quality_score"):
                self.add_error("quality_score", "Give a quality score from 1 to 5 to approve.")
            names = services.ticket_people_names(self.instance.ticket)
            for field in ("anonymized_question", "anonymized_answer"):
                left = pii.kinds_in(data.get(field) or "", names=names)
                if left:
                    self.add_error(field, f"Personal data remains: {', '.join(left)}.")
        if "_reject" in self.data and not (data.get("review_note") or "").strip():
            self.add_error("review_note", "Say why the example is rejected.")
        return data


@admin.register(TrainingExample)
class TrainingExampleAdmin(AgentAccessMixin, admin.ModelAdmin):
    """Review queue: the original (staff only) beside the anonymized text; save edits,
    approve with a quality score, or reject with a reason."""

    form = TrainingExampleForm
    change_form_template = "admin/support/trainingexample/change_form.html"
    list_display = (
        "short_question",
        "ticket_link",
        "status",
        "outcome",
        "author_kind",
        "satisfaction_rating",
        "pii_kinds",
        "quality_score",
        "created_at",
    )
    list_filter = ("status", "outcome", "author_kind", "ticket_type", "used_in_training")
    list_select_related = ("ticket",)
    search_fields = ("anonymized_question", "anonymized_answer", "ticket__reference")
    ordering = ("-created_at",)
    readonly_fields = (
        "ticket_link",
        "status",
        "outcome",
        "author_kind",
        "confidence",
        "satisfaction_rating",
        "pii_found",
        "pii_remaining",
        "question",
        "answer",
        "reviewed_by",
        "reviewed_at",
        "used_in_training",
        "exported_at",
        "times_used_by_ai",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("ticket_link", "status"),
                    ("outcome", "author_kind", "confidence", "satisfaction_rating"),
                    ("pii_found", "pii_remaining"),
                )
            },
        ),
        ("Original (staff only)", {"classes": ("hd-col",), "fields": ("question", "answer")}),
        (
            "Anonymized (what the agent learns from)",
            {"classes": ("hd-col",), "fields": ("anonymized_question", "anonymized_answer")},
        ),
        (
            "Review",
            {
                "fields": (
                    ("quality_score", "review_note"),
                    ("reviewed_by", "reviewed_at"),
                    ("used_in_training", "exported_at", "times_used_by_ai"),
                )
            },
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("ticket", "reviewed_by")

    def has_add_permission(self, request):
        return False  # examples are harvested from rated tickets

    @admin.display(description="question")
    def short_question(self, example):
        return truncatechars(example.anonymized_question.replace("\n", " "), 80)

    @admin.display(description="ticket", ordering="ticket__reference")
    def ticket_link(self, example):
        url = reverse("admin:support_ticket_change", args=[example.ticket_id])
        return format_html('<a href="{}">{}</a>', url, example.ticket.reference)

    @admin.display(description="PII removed")
    def pii_kinds(self, example):
        return ", ".join(example.pii_found) or "—"

    def save_model(self, request, obj, form, change):
        """Every change goes through the training services (never ``obj.save()``)."""
        original = TrainingExample.objects.get(pk=obj.pk)
        try:
            if (
                obj.anonymized_question != original.anonymized_question
                or obj.anonymized_answer != original.anonymized_answer
            ):
                services.training_example_edit(
                    example=original,
                    actor=request.user,
                    anonymized_question=obj.anonymized_question,
                    anonymized_answer=obj.anonymized_answer,
                )
            if "_approve" in request.POST:
                services.training_example_approve(
                    example=original, actor=request.user, quality_score=obj.quality_score
                )
                messages.success(request, "Approved: the agent may learn from this example.")
            elif "_reject" in request.POST:
                services.training_example_reject(
                    example=original, actor=request.user, reason=obj.review_note
                )
                messages.success(request, "Rejected: the example will not be used.")
        except DomainError as error:
            messages.error(request, error.message)

    def save_related(self, request, form, formsets, change):
        pass  # no relations are edited here
