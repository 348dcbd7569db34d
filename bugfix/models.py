"""Models of bugfix; each model's docstring defines its domain term.

The tables were created by ``integrations`` (migrations 0001-0002 there) and moved here
with their rows; bugfix's first migration only takes over the state."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class GithubLink(models.Model):
    """A bug ticket's way through GitHub: its issue, the AI's suggested fix, the draft pull
    request on a branch of its own, the checks, and the human review of that PR.

    Nothing here ever merges or pushes to the default branch: a person approves (the draft
    becomes ready for review on GitHub) or rejects (the PR is closed), and GitHub's webhook
    tells when it was merged.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ISSUE_CREATED = "issue_created", "Issue created"
        PR_DRAFTED = "pr_drafted", "Fix drafted"
        PR_MERGED = "pr_merged", "Fix merged"
        PR_REJECTED = "pr_rejected", "Fix rejected"
        FAILED = "failed", "Failed"

    class Checks(models.TextChoices):
        PENDING = "pending", "Pending"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    ticket = models.OneToOneField(
        "support.Ticket", on_delete=models.CASCADE, related_name="github_link"
    )
    repository = models.CharField(max_length=200, help_text="owner/name")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    issue_number = models.PositiveIntegerField(null=True, blank=True)
    issue_url = models.URLField(blank=True)
    branch_name = models.CharField(max_length=200, blank=True)
    base_branch = models.CharField(max_length=200, blank=True)
    pr_number = models.PositiveIntegerField(null=True, blank=True)
    pr_url = models.URLField(blank=True)
    suggested_files = models.JSONField(
        default=list,
        blank=True,
        help_text="The AI's fix: [{path, original, content}] (original: the file before).",
    )
    fix_explanation = models.TextField(blank=True)
    fix_confidence = models.FloatField(null=True, blank=True)
    fix_model = models.CharField(max_length=100, blank=True)
    checks_state = models.CharField(
        max_length=10, choices=Checks.choices, default=Checks.PENDING, blank=True
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_decision = models.CharField(
        max_length=10, blank=True, choices=[("approved", "Approved"), ("rejected", "Rejected")]
    )
    review_note = models.TextField(blank=True)
    last_error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["repository", "pr_number"], name="github_link_pr_idx"),
            models.Index(fields=["repository", "issue_number"], name="github_link_issue_idx"),
            models.Index(fields=["status"], name="github_link_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(fix_confidence__isnull=True)
                | Q(fix_confidence__gte=0, fix_confidence__lte=1),
                name="github_fix_confidence_0_1",
            )
        ]

    def __str__(self) -> str:
        return f"{self.repository} for ticket {self.ticket_id}"

    @property
    def ready_for_review(self) -> bool:
        """A draft PR whose checks passed and that no person has reviewed yet."""
        return (
            self.status == self.Status.PR_DRAFTED
            and self.checks_state == self.Checks.PASSED
            and self.reviewed_at is None
        )


class GithubDelivery(models.Model):
    """One webhook delivery from GitHub (by its ``X-GitHub-Delivery`` id), kept so a replay
    is recognised and a failed one can be processed again."""

    class Result(models.TextChoices):
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    delivery_id = models.CharField(max_length=100, unique=True)
    event = models.CharField(max_length=50)
    action = models.CharField(max_length=50, blank=True)
    payload = models.JSONField(default=dict)
    result = models.CharField(max_length=10, choices=Result.choices)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "GitHub deliveries"

    def __str__(self) -> str:
        return f"{self.event} {self.delivery_id}"
