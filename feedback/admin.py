"""Admin screens of feedback; every action calls a service.

Triage: filter by status/kind, sort by weighted score, see each request's voters with
their organization's MRR; change status (with a note emailed to voters) and merge
duplicates through the actions' confirmation pages. Counters, status and merges are
never edited as plain fields.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from core import roles
from core.admin_mixins import AgentAccessMixin, RevenueForManagersMixin
from core.errors import DomainError
from feedback import services
from feedback.models import FeatureRequest, FeatureRequestEvent, Vote


class MergedFilter(admin.SimpleListFilter):
    title = "merged"
    parameter_name = "merged"

    def lookups(self, request, model_admin):
        return [("no", "Not merged"), ("yes", "Merged duplicates")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(merged_into__isnull=True)
        if self.value() == "yes":
            return queryset.filter(merged_into__isnull=False)
        return queryset


class ReadOnlyInline(admin.TabularInline):
    """Shown to the staff who may see the request; written only through the services."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return roles.is_agent(request.user)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class VoteInline(RevenueForManagersMixin, ReadOnlyInline):
    model = Vote
    revenue_fields = ("organization_mrr",)  # managers only
    fields = ("user", "organization", "organization_mrr", "value", "weight", "updated_at")
    readonly_fields = fields
    ordering = ("-weight", "-updated_at")
    verbose_name_plural = "voters"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "organization")

    @admin.display(description="organization MRR (USD)")
    def organization_mrr(self, vote):
        return vote.organization.mrr if vote.organization else "—"


class EventInline(ReadOnlyInline):
    model = FeatureRequestEvent
    fk_name = "request"
    fields = (
        "created_at",
        "kind",
        "old_status",
        "new_status",
        "note",
        "actor",
        "other",
        "notified_at",
    )
    readonly_fields = fields
    verbose_name_plural = "changelog"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor", "other")


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=FeatureRequest.Status.choices)
    note = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="Optional, public: shown in the history and emailed to the voters.",
    )


class MergeForm(forms.Form):
    survivor = forms.ModelChoiceField(
        queryset=FeatureRequest.objects.none(),
        widget=forms.RadioSelect,
        empty_label=None,
        help_text="The others are merged into it: their votes move (one per person).",
    )

    def __init__(self, *args, requests, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["survivor"].queryset = requests


@admin.register(FeatureRequest)
class FeatureRequestAdmin(AgentAccessMixin, admin.ModelAdmin):
    list_display = (
        "title",
        "status",
        "kind",
        "weighted_score",
        "upvotes",
        "downvotes",
        "created_at",
    )
    list_display_links = ("title",)
    list_filter = (MergedFilter, "status", "kind", "is_public")
    search_fields = ("title", "description")
    ordering = ("-weighted_score", "-created_at")
    sortable_by = ("title", "weighted_score", "upvotes", "downvotes", "created_at", "status")
    date_hierarchy = "created_at"
    fields = (
        "title",
        "kind",
        "description",
        "is_public",
        "related_article",
        "related_tickets",
        "admin_notes",
        ("status", "status_changed_at"),
        ("upvotes", "downvotes", "weighted_score"),
        "merged_into",
        "author",
        ("created_at", "updated_at"),
    )
    readonly_fields = (
        "status",
        "status_changed_at",
        "upvotes",
        "downvotes",
        "weighted_score",
        "merged_into",
        "author",
        "created_at",
        "updated_at",
    )
    raw_id_fields = ("related_article", "related_tickets")
    inlines = [VoteInline, EventInline]
    actions = ["change_status_action", "merge_action"]

    def has_add_permission(self, request):
        return False  # requests are submitted on the roadmap (or the API), with their vote

    def _confirm(self, request, queryset, *, form, title, action, template):
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.model._meta,
                "form": form,
                "requests": queryset,
                "action": action,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description="Change status… (emails the voters)")
    def change_status_action(self, request, queryset):
        form = StatusForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self._confirm(
                request,
                queryset,
                form=form,
                title="Change the status of feature requests",
                action="change_status_action",
                template="admin/feedback/change_status.html",
            )
        done = 0
        for feature in queryset:
            try:
                services.request_change_status(
                    request=feature,
                    status=form.cleaned_data["status"],
                    actor=request.user,
                    note=form.cleaned_data["note"],
                )
                done += 1
            except DomainError as error:
                self.message_user(request, f"{feature}: {error.message}", messages.ERROR)
        if done:
            label = FeatureRequest.Status(form.cleaned_data["status"]).label.lower()
            self.message_user(request, f"{done} request(s) now {label}.", messages.SUCCESS)
        return None

    @admin.action(description="Merge selected duplicates…")
    def merge_action(self, request, queryset):
        queryset = queryset.filter(merged_into__isnull=True)
        if queryset.count() < 2:
            self.message_user(
                request, "Select at least two requests that are not merged yet.", messages.ERROR
            )
            return None
        form = MergeForm(request.POST if "apply" in request.POST else None, requests=queryset)
        if not form.is_valid():
            return self._confirm(
                request,
                queryset,
                form=form,
                title="Merge duplicate feature requests",
                action="merge_action",
                template="admin/feedback/merge.html",
            )
        survivor = form.cleaned_data["survivor"]
        merged = 0
        for duplicate in queryset.exclude(pk=survivor.pk):
            try:
                survivor = services.request_merge(
                    duplicate=duplicate, survivor=survivor, actor=request.user
                )
                merged += 1
            except DomainError as error:
                self.message_user(request, f"{duplicate}: {error.message}", messages.ERROR)
        if merged:
            self.message_user(
                request,
                f"Merged {merged} request(s) into “{survivor}”: {survivor.upvotes} up, "
                f"{survivor.downvotes} down, score {survivor.weighted_score:.1f}.",
                messages.SUCCESS,
            )
        return None


@admin.register(Vote)
class VoteAdmin(RevenueForManagersMixin, AgentAccessMixin, admin.ModelAdmin):
    """Read-only list of votes, to answer "who wants this, and how much are they worth?"
    (the organization's MRR: managers only)."""

    revenue_fields = ("organization_mrr",)

    list_display = (
        "request",
        "user",
        "organization",
        "organization_mrr",
        "value",
        "weight",
        "updated_at",
    )
    list_filter = ("value",)
    list_select_related = ("request", "user", "organization")
    search_fields = ("request__title", "user__username", "user__email", "organization__name")
    ordering = ("-updated_at",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="organization MRR (USD)", ordering="organization__mrr")
    def organization_mrr(self, vote):
        return vote.organization.mrr if vote.organization else "—"
