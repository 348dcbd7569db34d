"""Models of feedback; each model's docstring defines its domain term."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import MaxLengthValidator, MinLengthValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

from core.markdown import render_markdown

SEARCH_CONFIG = "english"


class FeatureRequest(models.Model):
    """Something customers ask the product to do (or to stop doing wrong).

    Its ``upvotes``, ``downvotes`` and ``weighted_score`` are denormalized from its votes and
    only ever changed in SQL by the services, in the transaction that changes the votes:
    ``weighted_score`` is the sum over its votes of value (+1/−1) × weight. A duplicate
    points to its survivor through ``merged_into`` and leaves the public lists.
    """

    class Kind(models.TextChoices):
        FEATURE_REQUEST = "feature_request", "Feature request"
        BUG_REPORT = "bug_report", "Bug report"
        IMPROVEMENT = "improvement", "Improvement"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        UNDER_REVIEW = "under_review", "Under review"
        PLANNED = "planned", "Planned"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        WONT_FIX = "wont_fix", "Won't fix"

    title = models.CharField(max_length=200, validators=[MinLengthValidator(5)])
    description = models.TextField(
        "description (Markdown)", blank=True, validators=[MaxLengthValidator(10_000)]
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.FEATURE_REQUEST)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="feature_requests",
    )
    related_article = models.ForeignKey(
        "knowledge.Article",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="feature_requests",
    )
    related_tickets = models.ManyToManyField(
        "support.Ticket", blank=True, related_name="feature_requests"
    )
    admin_notes = models.TextField(
        "internal notes", blank=True, help_text="Seen by staff only, never on the roadmap."
    )
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="duplicates",
        help_text="The request this duplicate was merged into.",
    )
    is_public = models.BooleanField(
        "public", default=True, help_text="Shown on the public roadmap to everyone."
    )
    upvotes = models.PositiveIntegerField(default=0, editable=False)
    downvotes = models.PositiveIntegerField(default=0, editable=False)
    weighted_score = models.DecimalField(max_digits=14, decimal_places=4, default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    search_vector = models.GeneratedField(
        expression=SearchVector("title", weight="A", config=SEARCH_CONFIG)
        + SearchVector("description", weight="B", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["-weighted_score", "-created_at"]
        indexes = [
            GinIndex(fields=["search_vector"], name="feature_request_search_idx"),
            models.Index(
                fields=["status", "-weighted_score"],
                name="feature_request_status_score",
                condition=Q(merged_into__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(merged_into=models.F("pk")), name="feature_request_not_self_merged"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("feedback:detail", args=[self.pk])

    @property
    def description_html(self) -> str:
        return render_markdown(self.description)

    @property
    def is_votable(self) -> bool:
        return self.merged_into_id is None and self.status in VOTABLE_STATUSES

    @property
    def vote_count(self) -> int:
        return self.upvotes + self.downvotes


VOTABLE_STATUSES = frozenset(
    {
        FeatureRequest.Status.OPEN,
        FeatureRequest.Status.UNDER_REVIEW,
        FeatureRequest.Status.PLANNED,
        FeatureRequest.Status.IN_PROGRESS,
    }
)


class Vote(models.Model):
    """One user's opinion of one feature request: up (+1) or down (−1).

    ``weight`` is what the vote counted for when it was last computed, from the voter's
    organization's monthly recurring revenue (see ``feedback.weights``); ``organization``
    is the voter's organization at voting time (empty for people without one).
    """

    class Value(models.IntegerChoices):
        UP = 1, "Up"
        DOWN = -1, "Down"

    request = models.ForeignKey(FeatureRequest, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feature_votes"
    )
    organization = models.ForeignKey(
        "support.Organization",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="feature_votes",
    )
    value = models.SmallIntegerField(choices=Value.choices)
    weight = models.DecimalField(max_digits=8, decimal_places=4)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["request", "user"], name="one_vote_per_user"),
            models.CheckConstraint(condition=Q(value__in=[1, -1]), name="vote_value_up_or_down"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="vote_weight_positive"),
        ]
        indexes = [models.Index(fields=["organization"], name="vote_organization_idx")]

    def __str__(self) -> str:
        return f"{self.get_value_display()} by {self.user} on #{self.request_id}"


class FeatureRequestEvent(models.Model):
    """One entry of a feature request's public changelog: submitted, a status change (with
    an optional note to voters), or a merge. Append-only."""

    class Kind(models.TextChoices):
        SUBMITTED = "submitted", "Submitted"
        STATUS_CHANGED = "status_changed", "Status changed"
        MERGED = "merged", "Merged"
        DUPLICATE_MERGED = "duplicate_merged", "Duplicate merged in"

    request = models.ForeignKey(FeatureRequest, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    old_status = models.CharField(max_length=20, choices=FeatureRequest.Status.choices, blank=True)
    new_status = models.CharField(max_length=20, choices=FeatureRequest.Status.choices, blank=True)
    note = models.TextField(blank=True, help_text="Public: shown in the history and emailed.")
    other = models.ForeignKey(
        FeatureRequest,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The other request of a merge.",
    )
    notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on #{self.request_id}"
