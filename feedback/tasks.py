"""Celery tasks of feedback: thin, take ids, idempotent, call services."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task

from feedback import notifications, services
from feedback.models import FeatureRequestEvent

logger = logging.getLogger(__name__)


@shared_task(
    # Network and SMTP errors (SMTPServerDisconnected, a busy server…) are retried.
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=30,
    retry_backoff_max=3600,
    retry_kwargs={"max_retries": 6},
    acks_late=True,
)
def notify_status_change(event_id: int) -> int:
    """Email the voters about one status change, once. The outbox runs it once per change;
    ``notified_at`` is stamped after the send, so a worker killed mid-send sends again
    (at least once) rather than never, and a later delivery of a sent one sends nothing."""
    event = (
        FeatureRequestEvent.objects.select_related("request")
        .filter(pk=event_id, notified_at__isnull=True)
        .first()
    )
    if event is None:
        logger.info("status change %s already notified", event_id)
        return 0
    sent = notifications.status_changed(event)
    services.status_change_mark_notified(event_id=event_id)
    return sent


@shared_task(
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_kwargs={"max_retries": 5},
    acks_late=True,
)
def reweigh_organization_votes(organization_id: int) -> int:
    """Recompute an organization's vote weights after its MRR changed (idempotent)."""
    return services.organization_reweigh_votes(organization_id=organization_id)
