"""Rules: *when* something happens to a ticket (or some time after it), *if* its
conditions hold, *then* do the actions, each through a support service.

A rule's conditions and actions are JSON documents validated by ``automation.conditions``
and ``automation.actions`` (the admin form, the API serializer and the services all call
those validators)::

    conditions = {"match": "all", "conditions": [
        {"field": "organization", "operator": "is", "value": 3},
        {"match": "any", "conditions": [
            {"field": "text", "operator": "contains", "value": "invoice"},
            {"field": "type", "operator": "is", "value": "billing"},
        ]},
    ]}
    actions = [{"type": "assign_person", "user": 7}, {"type": "add_note", "body": "…"}]

Rules run in ``position`` order; a rule with ``stop_processing`` that fired ends the run
for that ticket and trigger. A :class:`RuleFiring` row records each time a rule fired on
a ticket, unique by (rule, ticket, key): a time rule's key names the instant it counted
from, so it fires once per ticket and condition however often the sweep runs.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Rule(models.Model):
    class Trigger(models.TextChoices):
        TICKET_CREATED = "ticket_created", "Ticket created"
        CUSTOMER_MESSAGE = "customer_message", "Message added by the customer"
        AGENT_MESSAGE = "agent_message", "Message added by an agent"
        AI_MESSAGE = "ai_message", "Message added by the AI"
        STATUS_CHANGED = "status_changed", "Status changed"
        PRIORITY_CHANGED = "priority_changed", "Priority changed"
        ASSIGNEE_CHANGED = "assignee_changed", "Assignee changed"
        ESCALATED = "escalated", "Escalated"
        SLA_AT_RISK = "sla_at_risk", "SLA at risk"
        SLA_BREACHED = "sla_breached", "SLA breached"
        TIME_ELAPSED = "time_elapsed", "Time elapsed since…"

    class Since(models.TextChoices):
        """What a time rule counts from (each a ticket column, indexed)."""

        CREATED = "created", "the ticket was opened"
        STATUS_ENTERED = "status_entered", "the ticket entered its current status"
        RESOLVED = "resolved", "the ticket was resolved"

    class Unit(models.TextChoices):
        MINUTES = "minutes", "minutes"
        HOURS = "hours", "hours"
        DAYS = "days", "days"

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    is_enabled = models.BooleanField(
        "enabled", default=False, help_text="Preview a rule before you enable it."
    )
    position = models.PositiveIntegerField(default=100, help_text="Lower runs first.")
    stop_processing = models.BooleanField(
        default=False, help_text="When this rule fires, later rules do not run for this change."
    )
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    # Time rules only.
    since = models.CharField(max_length=20, choices=Since.choices, blank=True)
    delay = models.PositiveIntegerField(null=True, blank=True)
    delay_unit = models.CharField(max_length=10, choices=Unit.choices, blank=True)
    business_time = models.BooleanField(
        default=False, help_text="Count only the business hours of the ticket's SLA calendar."
    )
    conditions = models.JSONField(default=dict, blank=True)
    actions = models.JSONField(default=list)
    is_default = models.BooleanField(
        default=False, editable=False, help_text="Shipped with the helpdesk (editable)."
    )
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
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["is_enabled", "trigger", "position"], name="rule_run_idx")]

    def __str__(self) -> str:
        return self.name


class RuleFiring(models.Model):
    """A rule fired on a ticket (the audit trail of automation, and its once-only key)."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="firings")
    ticket = models.ForeignKey(
        "support.Ticket", on_delete=models.CASCADE, related_name="rule_firings"
    )
    key = models.CharField(max_length=64, help_text="The event or instant it fired for.")
    anchor_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Time rules: the instant counted from (the sweep skips tickets fired for it).",
    )
    depth = models.PositiveSmallIntegerField(default=0, help_text="0: fired by a person's change.")
    outcome = models.JSONField(default=list, blank=True, help_text="Each action and its result.")
    fired_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-fired_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "ticket", "key"], name="rule_firing_once")
        ]
        indexes = [
            models.Index(fields=["ticket", "-fired_at"], name="rule_firing_ticket_idx"),
            # The sweep's "not fired yet for this anchor" anti-join.
            models.Index(fields=["rule", "ticket", "anchor_at"], name="rule_firing_anchor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} on {self.ticket_id} ({self.key})"
