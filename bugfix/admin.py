"""Admin screens of bugfix; every action calls a service.

GitHub links: the review gate of AI-drafted fixes. "Ready for review" lists draft pull
requests whose checks passed and that nobody reviewed; a link's page shows the issue, the
PR, the AI's explanation and confidence, and the suggested change as a diff, with Approve
(marks the PR ready for review on GitHub) and Reject (closes it, with the reason).

Support's ticket list gets the bulk action "Send to GitHub as a bug" from here.
"""

from __future__ import annotations

import difflib

from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from bugfix import automation, services
from bugfix.models import GithubDelivery, GithubLink
from core.admin_mixins import AgentAccessMixin
from core.errors import DomainError
from core.roles import is_agent
from support import admin as support_admin  # noqa: F401  (registers the Ticket admin first)
from support.models import Ticket

Status = GithubLink.Status


class ReadyForReviewFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("ready", "Ready for review"), ("reviewed", "Reviewed")]

    def queryset(self, request, queryset):
        if self.value() == "ready":
            return queryset.filter(
                status=Status.PR_DRAFTED,
                checks_state=GithubLink.Checks.PASSED,
                reviewed_at__isnull=True,
            )
        if self.value() == "reviewed":
            return queryset.filter(reviewed_at__isnull=False)
        return queryset


def file_diffs(link: GithubLink) -> list[dict]:
    """The suggested change per file, as unified diff lines tagged add/del/hunk/context."""
    out = []
    for item in link.suggested_files or []:
        lines = []
        for line in difflib.unified_diff(
            (item.get("original") or "").splitlines(),
            (item.get("content") or "").splitlines(),
            fromfile=f"a/{item['path']}",
            tofile=f"b/{item['path']}",
            lineterm="",
        ):
            kind = (
                "hunk"
                if line.startswith("@@")
                else "add"
                if line.startswith("+") and not line.startswith("+++")
                else "del"
                if line.startswith("-") and not line.startswith("---")
                else "context"
            )
            lines.append({"kind": kind, "text": line})
        out.append({"path": item["path"], "lines": lines, "new": not item.get("original")})
    return out


@admin.register(GithubLink)
class GithubLinkAdmin(AgentAccessMixin, admin.ModelAdmin):
    change_form_template = "admin/bugfix/githublink/change_form.html"
    list_display = (
        "ticket_ref",
        "repository",
        "status",
        "issue",
        "pull_request",
        "checks_state",
        "fix_confidence",
        "is_ready",
        "reviewed_at",
    )
    list_filter = (ReadyForReviewFilter, "status", "checks_state", "repository")
    list_select_related = ("ticket",)
    search_fields = ("ticket__reference", "repository", "branch_name")
    ordering = ("-updated_at",)
    readonly_fields = [f.name for f in GithubLink._meta.fields]
    exclude = ("suggested_files",)

    def has_add_permission(self, request):
        return False  # links come from bug tickets ("Send to GitHub" on a ticket)

    def has_change_permission(self, request, obj=None):
        return False  # read-only: the review buttons call the services

    @admin.display(description="ticket", ordering="ticket__reference")
    def ticket_ref(self, link):
        url = reverse("admin:support_ticket_change", args=[link.ticket_id])
        return format_html('<a href="{}">{}</a>', url, link.ticket.reference)

    @admin.display(description="issue")
    def issue(self, link):
        if not link.issue_url:
            return "—"
        return format_html('<a href="{}">#{}</a>', link.issue_url, link.issue_number)

    @admin.display(description="pull request")
    def pull_request(self, link):
        if not link.pr_url:
            return "—"
        return format_html('<a href="{}">#{}</a>', link.pr_url, link.pr_number)

    @admin.display(description="ready for review", boolean=True)
    def is_ready(self, link):
        return link.ready_for_review

    def get_urls(self):
        return [
            path(
                "<int:pk>/review/",
                self.admin_site.admin_view(self.review_view),
                name="bugfix_githublink_review",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        link = get_object_or_404(GithubLink, pk=object_id)
        extra = {
            "diffs": file_diffs(link),
            "link": link,
            "can_review": is_agent(request.user)
            and link.status == Status.PR_DRAFTED
            and link.reviewed_at is None,
            "review_url": reverse("admin:bugfix_githublink_review", args=[link.pk]),
        }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def review_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        link = get_object_or_404(GithubLink, pk=pk)
        approved = request.POST.get("decision") == "approve"
        try:
            automation.review(
                link, actor=request.user, approved=approved, note=request.POST.get("note", "")
            )
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request,
                "Approved: the pull request is ready for review on GitHub."
                if approved
                else "Rejected: the pull request was closed on GitHub.",
            )
        return HttpResponseRedirect(reverse("admin:bugfix_githublink_change", args=[pk]))


@admin.register(GithubDelivery)
class GithubDeliveryAdmin(AgentAccessMixin, admin.ModelAdmin):
    list_display = ("delivery_id", "event", "action", "result", "received_at")
    list_filter = ("event", "result")
    search_fields = ("delivery_id",)
    readonly_fields = (
        "delivery_id",
        "event",
        "action",
        "payload",
        "result",
        "error",
        "received_at",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# ---- support's ticket list: "Send to GitHub as a bug" ----------------------------------------
# bugfix adds its bulk action to support's Ticket admin (support does not know bugfix).


@admin.action(description="Send to GitHub as a bug")
def send_to_github_action(modeladmin, request, queryset):
    modeladmin._bulk(
        request,
        queryset,
        "Sent to GitHub",
        lambda t: services.ticket_send_to_github(ticket=t, actor=request.user),
    )


ticket_admin = admin.site.get_model_admin(Ticket)
if send_to_github_action not in ticket_admin.actions:
    ticket_admin.actions = (*ticket_admin.actions, send_to_github_action)
