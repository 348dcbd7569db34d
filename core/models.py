"""The transactional outbox: follow-up work written in the same transaction as the change
that calls for it (see :mod:`core.outbox`)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class OutboxItem(models.Model):
    """One piece of follow-up work (a Celery task with its arguments) that a committed
    change owes: an AI analysis, an email, an embedding, a GitHub call.

    The row commits with the change, so the work cannot be lost by a broker outage or a
    dead worker: the relay hands it to Celery until a worker reports it done or failed.
    ``pending``: not handed over yet; ``sent``: in the broker; ``running``: a worker holds
    it until ``lease_until`` (extended while it runs; a dead worker's lease runs out and
    the item is sent again); ``done``; ``failed``: gave up, with the error (a person can
    retry it from admin).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent to a worker"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    OPEN = (Status.PENDING, Status.SENT, Status.RUNNING)

    task = models.CharField(max_length=200, help_text="Celery task name.")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    available_at = models.DateTimeField(help_text="Not to be run before this time.")
    sends = models.PositiveIntegerField(default=0, help_text="Times handed to the broker.")
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker started it.")
    sent_at = models.DateTimeField(null=True, blank=True)
    broker_run_id = models.CharField(
        max_length=64, blank=True, help_text="The broker instance it was handed to."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The relay's and readiness's only reads: open items by time.
            models.Index(
                fields=["available_at"],
                name="outbox_open_idx",
                condition=Q(status__in=["pending", "sent", "running"]),
            ),
            models.Index(fields=["status", "created_at"], name="outbox_status_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.task} #{self.pk} ({self.status})"
