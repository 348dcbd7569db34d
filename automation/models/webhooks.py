"""Outbound webhooks: a staff-managed endpoint subscribes to events; each event becomes a
:class:`WebhookDelivery` row (queued in the transaction of the change), posted as signed
JSON by a worker, retried with backoff, its responses kept as the delivery log."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEndpoint(models.Model):
    class Event(models.TextChoices):
        TICKET_CREATED = "ticket.created", "Ticket created"
        TICKET_UPDATED = "ticket.updated", "Ticket updated"
        TICKET_RESOLVED = "ticket.resolved", "Ticket resolved"
        MESSAGE_ADDED = "message.added", "Message added"
        FEATURE_REQUEST_STATUS = (
            "feature_request.status_changed",
            "Feature request status changed",
        )
        RULE_ACTION = "rule.action", "Called by a rule"

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100, default=new_secret)
    events = ArrayField(
        models.CharField(max_length=40, choices=Event.choices), default=list, blank=True
    )
    include_internal = models.BooleanField(
        "send internal notes",
        default=False,
        help_text='Also send staff-only notes (marked "internal": true). Off: they are left out.',
    )
    is_active = models.BooleanField("active", default=True)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.TextField(blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        RETRYING = "retrying", "Retrying"
        FAILED = "failed", "Failed (gave up)"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=40)
    event_id = models.UUIDField(unique=True, help_text="Sent as X-Helpdesk-Delivery.")
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_log_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due_idx"),
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint_id} ({self.status})"
