"""Automation's Celery tasks: the time-rule sweep (beat) and webhook deliveries."""

from __future__ import annotations

from celery import shared_task

# --------------------------------------------------------------------------------------
# Outbound webhooks (automation.webhooks)
# --------------------------------------------------------------------------------------


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: int) -> str:
    """One attempt at a webhook delivery, owed through the outbox.

    Sends outside any transaction, then records the attempt (which schedules the next one,
    after the retry schedule's wait, in the same transaction). Safe to run twice: a
    finished delivery, or one whose next attempt is not due yet (this message is a copy
    the relay sent again), is left alone; a second record of the same attempt is ignored.
    """
    from django.utils import timezone

    from automation import webhooks
    from automation.models import WebhookDelivery
    from automation.services import webhooks as services

    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        return "gone"
    if delivery.status in (WebhookDelivery.Status.SUCCEEDED, WebhookDelivery.Status.FAILED):
        return "finished"
    if delivery.next_attempt_at and delivery.next_attempt_at > timezone.now():
        return "not due"
    endpoint = delivery.endpoint
    if not endpoint.is_active and delivery.event != services.PING:
        services.delivery_abandon(
            delivery_id=delivery.pk, reason="Not sent: the endpoint was disabled."
        )
        return "abandoned"
    outcome = webhooks.send(
        url=endpoint.url,
        secret=endpoint.secret,
        event=delivery.event,
        delivery_uuid=delivery.event_id,
        payload=delivery.payload,
    )
    recorded = services.delivery_record_attempt(
        delivery_id=delivery.pk,
        attempt=delivery.attempts + 1,
        response_status=outcome.response_status,
        response_body=outcome.response_body,
        response_ms=outcome.response_ms,
        error=outcome.error,
    )
    return recorded.status if recorded else "already recorded"


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=5)
def notify_webhook_disabled(self, endpoint_id: int) -> int:
    """Email managers and superusers that an endpoint was disabled after repeated failures
    (queued by ``endpoint_disable``). A transient SMTP error is retried."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.mail import send_mail
    from django.db.models import Q
    from django.template.loader import render_to_string

    from automation.models import WebhookEndpoint

    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None or endpoint.is_active:
        return 0
    users = get_user_model().objects.filter(
        Q(is_superuser=True) | Q(groups__name=settings.MANAGERS_GROUP), is_active=True
    )
    recipients = sorted({email for email in users.values_list("email", flat=True) if email})
    if not recipients:
        return 0
    context = {
        "endpoint": endpoint,
        "admin_url": f"{settings.SITE_URL}/admin/automation/webhookendpoint/{endpoint.pk}/change/",
    }
    try:
        return send_mail(
            subject=f"Webhook endpoint “{endpoint.name}” was disabled",
            message=render_to_string("automation/email/webhook_disabled.txt", context),
            from_email=None,
            recipient_list=recipients,
        )
    except OSError as exc:
        raise self.retry(exc=exc, countdown=60 * 2**self.request.retries) from exc


# --------------------------------------------------------------------------------------
# Rules (automation.engine, automation.timed)
# --------------------------------------------------------------------------------------


@shared_task(ignore_result=True, acks_late=True)
def run_time_rules() -> dict:
    """Beat, every minute: fire the time rules that are due (``automation.timed``)."""
    from automation import timed

    return timed.run_time_rules()


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=5)
def send_rule_email(
    self,
    ticket_id: int,
    rule_id: int | None,
    to: str,
    addresses: list,
    subject: str,
    body: str,
) -> int:
    """A rule's ``notify_email`` action, after the change committed (through the outbox).
    Placeholders (``{{ ticket.reference }}`` …) are filled in now; a transient SMTP error
    is retried with backoff."""
    from automation import actions

    try:
        return actions.send_email(
            ticket_id=ticket_id,
            rule_id=rule_id,
            to=to,
            addresses=addresses,
            subject=subject,
            body=body,
        )
    except Exception as exc:
        from support.tasks import is_transient

        if is_transient(exc) and self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=60 * 2**self.request.retries) from exc
        raise
