"""Celery tasks of analytics: thin, take ids, idempotent, call services."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from analytics import services
from core.outbox import schedule_after_commit


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True)
def rollup_day(day: str) -> dict[str, int]:
    """Recompute one local day's rollups (ISO date); safe to run again for any day."""
    return services.rollup_day(dt.date.fromisoformat(day))


@shared_task
def rollup_pending() -> list[str]:
    """Nightly (beat): yesterday, any day missed since the last rollup, and the day whose
    7-day "not reopened" window has just closed, each as its own ``rollup_day`` task."""
    days = [day.isoformat() for day in services.days_to_roll_up(services.local_today())]
    for day in days:
        schedule_after_commit(rollup_day, day)
    return days
