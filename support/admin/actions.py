"""HTTP actions in admin: managers define what the AI agent may call (agents read the
definitions); everyone on staff works the runs of actions that change data: the queue of
runs awaiting approval (filter by status), "Approve" and "Reject…" on the list and on a
run's page, each through ``support.services`` (``action_run_approve`` /
``action_run_reject``). A run's arguments and answer are shown, never edited."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import truncatechars
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin_mixins import AgentAccessMixin
from core.errors import DomainError
from core.roles import is_agent, is_manager
from support import services
from support.models import ActionRun, HttpAction, TicketType


class HttpActionForm(forms.ModelForm):
    ticket_types = forms.MultipleChoiceField(
        choices=TicketType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Offered on tickets of these types only (none ticked: every type).",
    )

    class Meta:
        model = HttpAction
        fields = [
            "name",
            "title",
            "description",
            "method",
            "url_template",
            "parameters_schema",
            "secret_env_var",
            "ticket_types",
            "changes_data",
            "requires_approval",
            "timeout_seconds",
            "is_active",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 4, "cols": 80}),
            "parameters_schema": forms.Textarea(attrs={"rows": 12, "cols": 80}),
        }

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        try:
            services.http_action_check(action=self.instance)
        except DomainError as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)


@admin.register(HttpAction)
class HttpActionAdmin(AgentAccessMixin, admin.ModelAdmin):
    form = HttpActionForm
    list_display = (
        "name",
        "title",
        "method",
        "url_template",
        "changes_data",
        "requires_approval",
        "is_active",
    )
    list_filter = ("is_active", "changes_data", "requires_approval", "method")
    search_fields = ("name", "title", "url_template", "description")
    fieldsets = (
        (None, {"fields": ("name", "title", "description", "is_active")}),
        (
            "Request",
            {
                "fields": (
                    "method",
                    "url_template",
                    "parameters_schema",
                    "secret_env_var",
                    "timeout_seconds",
                ),
                "description": "The key is read from the environment variable named here, in "
                "the web and worker processes; it is never stored or shown.",
            },
        ),
        ("When", {"fields": ("ticket_types", "changes_data", "requires_approval")}),
    )

    def has_change_permission(self, request, obj=None):
        return is_manager(request.user)

    def has_add_permission(self, request):
        return is_manager(request.user)

    def save_model(self, request, obj, form, change):
        services.http_action_save(action=obj, actor=request.user)


class RejectForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=2000,
        help_text="For the team (an internal note); the customer reads that it was not done.",
    )


@admin.register(ActionRun)
class ActionRunAdmin(AgentAccessMixin, admin.ModelAdmin):
    change_form_template = "admin/support/actionrun/change_form.html"
    list_display = (
        "id",
        "ticket_link",
        "action",
        "status",
        "short_arguments",
        "response_status",
        "approved_by",
        "created_at",
    )
    list_filter = ("status", "action")
    list_select_related = ("ticket", "action", "approved_by")
    search_fields = ("ticket__reference", "action__name", "action__title")
    ordering = ("-created_at", "-id")
    actions = ("approve_action", "reject_action")
    fields = (
        ("ticket_link", "action", "status"),
        "shown_arguments",
        ("confirmed_at", "approved_by", "decided_at"),
        ("response_status", "error"),
        "shown_response",
        ("created_at", "updated_at"),
    )
    readonly_fields = (
        "ticket_link",
        "action",
        "status",
        "shown_arguments",
        "confirmed_at",
        "approved_by",
        "decided_at",
        "response_status",
        "error",
        "shown_response",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request):
        return False  # the AI asks for runs; people confirm, approve or reject them

    def has_change_permission(self, request, obj=None):
        return False  # read-only: the buttons call the services

    @admin.display(description="ticket", ordering="ticket__reference")
    def ticket_link(self, run):
        url = reverse("admin:support_ticket_change", args=[run.ticket_id])
        return format_html('<a href="{}">{}</a>', url, run.ticket.reference)

    @admin.display(description="arguments")
    def short_arguments(self, run):
        return truncatechars(json.dumps(run.arguments, ensure_ascii=False), 80)

    @admin.display(description="arguments")
    def shown_arguments(self, run):
        return format_html("<pre>{}</pre>", json.dumps(run.arguments, indent=2, ensure_ascii=False))

    @admin.display(description="answer")
    def shown_response(self, run):
        if run.response_body is None:
            return "—"
        if isinstance(run.response_body, str):
            return format_html("<pre>{}</pre>", run.response_body)
        text = json.dumps(run.response_body, indent=2, ensure_ascii=False)
        return format_html("<pre>{}</pre>", text)

    # ---- approve / reject ---------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<int:pk>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="support_actionrun_approve",
            ),
            path(
                "<int:pk>/reject/",
                self.admin_site.admin_view(self.reject_view),
                name="support_actionrun_reject",
            ),
            *super().get_urls(),
        ]

    def _change_url(self, run) -> str:
        return reverse("admin:support_actionrun_change", args=[run.pk])

    def _approve(self, request, run) -> bool:
        try:
            services.action_run_approve(run=run, actor=request.user)
        except DomainError as error:
            self.message_user(request, f"Run {run.pk}: {error.message}", messages.ERROR)
            return False
        return True

    def _reject(self, request, run, reason: str) -> bool:
        try:
            services.action_run_reject(run=run, actor=request.user, reason=reason)
        except DomainError as error:
            self.message_user(request, f"Run {run.pk}: {error.message}", messages.ERROR)
            return False
        return True

    @admin.action(description="Approve (runs them now)")
    def approve_action(self, request, queryset):
        done = sum(self._approve(request, run) for run in queryset)
        if done:
            self.message_user(
                request, f"Approved {done} action(s): they run now.", messages.SUCCESS
            )

    def _reject_page(self, request, runs, form, *, action: str = ""):
        return TemplateResponse(
            request,
            "admin/support/actionrun/reject.html",
            {
                **self.admin_site.each_context(request),
                "title": "Reject actions",
                "opts": self.model._meta,
                "form": form,
                "runs": runs,
                "action": action,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description="Reject… (with a reason)")
    def reject_action(self, request, queryset):
        form = RejectForm(request.POST if "apply" in request.POST else None)
        runs = list(queryset.select_related("ticket", "action"))
        if not form.is_valid():
            return self._reject_page(request, runs, form, action="reject_action")
        done = sum(self._reject(request, run, form.cleaned_data["reason"]) for run in runs)
        if done:
            self.message_user(request, f"Rejected {done} action(s).", messages.SUCCESS)
        return None

    def approve_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = get_object_or_404(ActionRun, pk=pk)
        if self._approve(request, run):
            self.message_user(request, "Approved: the action runs now.", messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(run))

    def reject_view(self, request, pk):
        run = get_object_or_404(ActionRun.objects.select_related("ticket", "action"), pk=pk)
        if not is_agent(request.user):
            return HttpResponseRedirect(reverse("admin:index"))
        form = RejectForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            if self._reject(request, run, form.cleaned_data["reason"]):
                self.message_user(request, "Rejected: the customer is told.", messages.SUCCESS)
            return HttpResponseRedirect(self._change_url(run))
        return self._reject_page(request, [run], form)
