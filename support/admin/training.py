"""Training examples: the review queue. The original (staff only) beside the anonymized
text; a reviewer saves edits, approves with a quality score or rejects with a reason,
each through the training services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.defaultfilters import truncatechars
from django.urls import reverse
from django.utils.html import format_html

from core.admin_mixins import AgentAccessMixin
from core.errors import DomainError
from support import pii, services
from support.models import TrainingExample


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
