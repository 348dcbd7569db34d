"""Organizations with their people, teams with their members: the managers' part of the
desk's setup (SLA policies and calendars: ``support.admin.sla``). Every save goes
through support's services (``organization_create`` / ``organization_update``,
``organization_members_save``, ``team_save``, ``team_members_save``)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Q

from core.admin_mixins import AgentAccessMixin, RevenueForManagersMixin
from support import selectors, services
from support.models import (
    OPEN_STATUSES,
    CustomerProfile,
    Organization,
    Team,
    TeamMembership,
)


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
                    filter=Q(tickets__status__in=sorted(OPEN_STATUSES)),
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

    def save_model(self, request, obj, form, change):
        """Through the services: a revenue change there reweighs the votes."""
        if change:
            changed = {name: form.cleaned_data[name] for name in form.changed_data}
            services.organization_update(organization=obj, actor=request.user, **changed)
            return
        created = services.organization_create(actor=request.user, **form.cleaned_data)
        # Admin goes on with its own instance (the people inline, the log, the redirect).
        obj.pk, obj._state.adding = created.pk, False

    def save_formset(self, request, form, formset, change):
        profiles = formset.save(commit=False)  # the rows as edited; nothing is written yet
        services.organization_members_save(
            organization=form.instance,
            actor=request.user,
            profiles=profiles,
            removed=formset.deleted_objects,
        )


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

    def save_model(self, request, obj, form, change):
        services.team_save(team=obj, actor=request.user)

    def save_formset(self, request, form, formset, change):
        memberships = formset.save(commit=False)  # the rows as edited; nothing is written
        services.team_members_save(
            team=form.instance,
            actor=request.user,
            memberships=memberships,
            removed=formset.deleted_objects,
        )
