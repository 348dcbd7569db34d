"""Targets from today's hours, and the new clocks of existing tickets, so that nothing
changes: each priority's first response, next response and resolution targets are its
hours; an open ticket's first response (if none yet) and resolution are due at its
current ``sla_due_at``, counted around the clock (policies have no calendar yet)."""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.db.models import F, Q
from django.utils import timezone

PRIORITIES = ("low", "normal", "high", "urgent")
OPEN = ("new", "analyzing", "ai_responding", "awaiting_customer", "escalated")


def forwards(apps, schema_editor):
    SlaPolicy = apps.get_model("support", "SlaPolicy")
    SlaTarget = apps.get_model("support", "SlaTarget")
    Ticket = apps.get_model("support", "Ticket")
    targets = []
    for policy in SlaPolicy.objects.all():
        for priority in PRIORITIES:
            minutes = getattr(policy, f"{priority}_hours") * 60
            targets.append(
                SlaTarget(
                    policy=policy,
                    priority=priority,
                    first_response_minutes=minutes,
                    next_response_minutes=minutes,
                    resolution_minutes=minutes,
                )
            )
    SlaTarget.objects.bulk_create(targets, ignore_conflicts=True)

    at_risk = timedelta(hours=settings.HELPDESK_SLA_AT_RISK_HOURS)
    due = Ticket.objects.filter(sla_due_at__isnull=False)
    due.filter(status__in=OPEN).update(
        resolution_due_at=F("sla_due_at"),
        sla_resumed_at=F("created_at"),
        sla_at_risk_at=F("sla_due_at") - at_risk,
    )
    due.filter(status__in=OPEN, first_response_at__isnull=True).update(
        first_response_due_at=F("sla_due_at")
    )
    due.exclude(status__in=OPEN).update(resolution_due_at=F("sla_due_at"))
    due.filter(
        Q(status__in=OPEN, sla_due_at__lt=timezone.now())
        | Q(resolved_at__isnull=False, sla_due_at__lt=F("resolved_at"))
    ).update(sla_breached_at=F("sla_due_at"))


class Migration(migrations.Migration):
    dependencies = [("support", "0016_sla_calendars")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
