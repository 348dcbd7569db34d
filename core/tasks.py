"""Celery tasks of core: the outbox relay (beat, every few seconds) and its daily prune."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from core import outbox


@shared_task(ignore_result=True)
def outbox_relay() -> int:
    """Send what the outbox still owes (see :func:`core.outbox.relay`)."""
    return outbox.relay()


@shared_task(ignore_result=True)
def outbox_prune() -> int:
    """Beat, daily: forget done items after ``OUTBOX_KEEP_DAYS``."""
    return outbox.prune(keep_days=settings.OUTBOX_KEEP_DAYS)
