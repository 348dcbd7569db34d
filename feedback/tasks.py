"""Celery tasks of feedback: thin, take ids, idempotent, call services."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from feedback import notifications, services
from feedback.models import FeatureRequestEvent

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,
    retry_kwargs={"max_retries": 5},
    acks_late=True,
)
def notify_status_change(event_id: int) -> int:
    """Email the voters about one status change, once: the event row is claimed in SQL
    (``notified_at``), so a redelivered task sends nothing; a failed send releases it."""
    claimed = FeatureRequestEvent.objects.filter(pk=event_id, notified_at__isnull=True).update(
        notified_at=timezone.now()
    )
    if not claimed:
        logger.info("status change %s already notified", event_id)
        return 0
    event = FeatureRequestEvent.objects.select_related("request").get(pk=event_id)
    try:
        return notifications.status_changed(event)
    except Exception:
        FeatureRequestEvent.objects.filter(pk=event_id).update(notified_at=None)
        raise


@shared_task(
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_kwargs={"max_retries": 5},
    acks_late=True,
)
def reweigh_organization_votes(organization_id: int) -> int:
    """Recompute an organization's vote weights after its MRR changed (idempotent)."""
    return services.organization_reweigh_votes(organization_id=organization_id)
