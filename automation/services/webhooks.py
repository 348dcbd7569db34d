"""Outbound webhooks' write path: endpoints (create, update, enable, disable, rotate the
secret, delete, ping) and deliveries (queue, record an attempt, redeliver).

Doors (admin, API, the delivery task) call these; nothing else writes the two tables.
What the events mean and how a request is signed and sent: :mod:`automation.webhooks`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from automation import webhooks
from automation.models import WebhookDelivery, WebhookEndpoint
from automation.models.webhooks import new_secret
from core.errors import Conflict, DomainError, NotPermitted
from core.outbox import schedule_after_commit
from core.roles import is_agent

D = WebhookDelivery.Status
DELIVER_TASK = "automation.tasks.deliver_webhook"
NOTIFY_TASK = "automation.tasks.notify_webhook_disabled"
#: Events an endpoint can subscribe to (``ping`` is sent on demand, to any endpoint).
SUBSCRIBABLE = set(WebhookEndpoint.Event.values)
PING = "ping"
RESPONSE_BODY_LIMIT = 2048


def _staff(actor) -> None:
    if actor is not None and not is_agent(actor):
        raise NotPermitted("Only support staff manage webhooks.")


def _clean_events(events) -> list[str]:
    events = list(dict.fromkeys(events or []))
    unknown = [e for e in events if e not in SUBSCRIBABLE]
    if unknown:
        raise DomainError(
            f"Unknown event {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(sorted(SUBSCRIBABLE))}.",
            field="events",
        )
    return events


def _clean_name(name: str, *, exclude_pk=None) -> str:
    name = (name or "").strip()
    if not name:
        raise DomainError("Give the endpoint a name.", field="name")
    if len(name) > 100:
        raise DomainError("Keep the name within 100 characters.", field="name")
    taken = WebhookEndpoint.objects.filter(name__iexact=name).exclude(pk=exclude_pk)
    if taken.exists():
        raise DomainError("Another endpoint has this name.", field="name")
    return name


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    if len(url) > 500:
        raise DomainError("Keep the URL within 500 characters.", field="url")
    webhooks.resolve_public(url)  # refuses bad URLs and private addresses (field "url")
    return url


def endpoint_check(*, name, url, events, exclude_pk=None) -> None:
    """What :func:`endpoint_create` / :func:`endpoint_update` would refuse, for a form to
    show on its fields before saving."""
    _clean_name(name, exclude_pk=exclude_pk)
    _clean_url(url)
    _clean_events(events)


def _locked(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    return WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)


# --------------------------------------------------------------------------------------
# Endpoints
# --------------------------------------------------------------------------------------


@transaction.atomic
def endpoint_create(
    *,
    name: str,
    url: str,
    events: list[str],
    actor,
    include_internal: bool = False,
    is_active: bool = True,
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (shown to its creator once)."""
    _staff(actor)
    endpoint = WebhookEndpoint.objects.create(
        name=_clean_name(name),
        url=_clean_url(url),
        events=_clean_events(events),
        include_internal=bool(include_internal),
        is_active=bool(is_active),
        secret=new_secret(),
        created_by=actor,
    )
    webhooks.invalidate_subscriptions()
    return endpoint


@transaction.atomic
def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    actor,
    name: str | None = None,
    url: str | None = None,
    events: list[str] | None = None,
    include_internal: bool | None = None,
    is_active: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given; turning ``is_active`` on is :func:`endpoint_enable`, off is
    :func:`endpoint_disable` (by hand)."""
    _staff(actor)
    endpoint = _locked(endpoint)
    fields: dict = {}
    if name is not None and name.strip() != endpoint.name:
        fields["name"] = _clean_name(name, exclude_pk=endpoint.pk)
    if url is not None and url.strip() != endpoint.url:
        fields["url"] = _clean_url(url)
    if events is not None:
        cleaned = _clean_events(events)
        if cleaned != list(endpoint.events):
            fields["events"] = cleaned
    if include_internal is not None and bool(include_internal) != endpoint.include_internal:
        fields["include_internal"] = bool(include_internal)
    if fields:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(updated_at=timezone.now(), **fields)
        webhooks.invalidate_subscriptions()
    if is_active is True and not endpoint.is_active:
        return endpoint_enable(endpoint=endpoint, actor=actor)
    if is_active is False and endpoint.is_active:
        return endpoint_disable(endpoint=endpoint, actor=actor, reason="Disabled by staff.")
    endpoint.refresh_from_db()
    return endpoint


@transaction.atomic
def endpoint_enable(*, endpoint: WebhookEndpoint, actor) -> WebhookEndpoint:
    """Active again, its failure count and the reason it was disabled cleared."""
    _staff(actor)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=True,
        consecutive_failures=0,
        disabled_at=None,
        disabled_reason="",
        updated_at=timezone.now(),
    )
    webhooks.invalidate_subscriptions()
    endpoint.refresh_from_db()
    return endpoint


@transaction.atomic
def endpoint_disable(*, endpoint: WebhookEndpoint, reason: str, actor=None) -> WebhookEndpoint:
    """No more deliveries until enabled again (by staff, or automatically when
    deliveries keep failing: ``actor`` None, and managers are emailed)."""
    _staff(actor)
    endpoint = _locked(endpoint)
    if not endpoint.is_active:
        return endpoint
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False,
        disabled_at=timezone.now(),
        disabled_reason=reason[:2000],
        updated_at=timezone.now(),
    )
    webhooks.invalidate_subscriptions()
    if actor is None:
        schedule_after_commit(NOTIFY_TASK, endpoint.pk)
    endpoint.refresh_from_db()
    return endpoint


@transaction.atomic
def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor) -> WebhookEndpoint:
    """A new signing secret, used from the next attempt on (the old one stops working)."""
    _staff(actor)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        secret=new_secret(), updated_at=timezone.now()
    )
    endpoint.refresh_from_db()
    return endpoint


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint, actor) -> None:
    """Gone with its delivery log."""
    _staff(actor)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
    webhooks.invalidate_subscriptions()


@transaction.atomic
def endpoint_ping(*, endpoint: WebhookEndpoint, actor) -> WebhookDelivery:
    """Queue a ``ping`` delivery (sent even to a disabled endpoint: a test before
    enabling it again)."""
    _staff(actor)
    data = {
        "endpoint": {"id": endpoint.pk, "name": endpoint.name},
        "message": "A test ping from the helpdesk.",
    }
    return deliveries_queue(endpoint_ids=[endpoint.pk], event=PING, data=data, active_only=False)[0]


# --------------------------------------------------------------------------------------
# Deliveries
# --------------------------------------------------------------------------------------


@transaction.atomic
def deliveries_queue(
    *, endpoint_ids: list[int], event: str, data: dict, active_only: bool = True
) -> list[WebhookDelivery]:
    """One delivery of ``event`` per endpoint (the active ones unless ``active_only`` is
    off), payload fixed now; each is owed to the delivery task through the outbox."""
    if not endpoint_ids:
        return []
    endpoints = WebhookEndpoint.objects.filter(pk__in=endpoint_ids)
    if active_only:
        endpoints = endpoints.filter(is_active=True)
    ids = sorted(endpoints.values_list("pk", flat=True))
    rows = []
    for endpoint_id in ids:
        event_id = uuid.uuid4()
        rows.append(
            WebhookDelivery(
                endpoint_id=endpoint_id,
                event=event,
                event_id=event_id,
                payload=webhooks.envelope(delivery_id=event_id, event=event, data=data),
            )
        )
    created = WebhookDelivery.objects.bulk_create(rows)
    for delivery in created:
        schedule_after_commit(DELIVER_TASK, delivery.pk)
    return created


def retry_schedule() -> list[int]:
    """Seconds to wait before each retry; its length is how many retries there are."""
    return [int(s) for s in settings.HELPDESK_WEBHOOKS_RETRY_SCHEDULE]


@transaction.atomic
def delivery_record_attempt(
    *,
    delivery_id: int,
    attempt: int,
    response_status: int | None = None,
    response_body: str = "",
    response_ms: int | None = None,
    error: str = "",
) -> WebhookDelivery | None:
    """Record attempt number ``attempt`` (1-based) and what follows from it.

    2xx: succeeded, the endpoint's failure count back to 0. Otherwise the next attempt is
    scheduled through the outbox after the retry schedule's wait (written in this
    transaction: a worker that dies later loses nothing); after the last one the
    delivery has failed, the endpoint's count of deliveries failed in a row goes up and,
    at ``HELPDESK_WEBHOOKS_DISABLE_AFTER``, the endpoint is disabled and managers are
    told. An attempt already recorded (the task ran twice) changes nothing: None.
    """
    delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
    if delivery is None or delivery.attempts != attempt - 1:
        return None
    if delivery.status in (D.SUCCEEDED, D.FAILED):
        return None
    now = timezone.now()
    ok = response_status is not None and 200 <= response_status < 300 and not error
    fields = {
        "attempts": attempt,
        "response_status": response_status,
        "response_body": (response_body or "")[:RESPONSE_BODY_LIMIT],
        "response_ms": response_ms,
        "error": (error or "")[:2000],
    }
    endpoints = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
    schedule = retry_schedule()
    if ok:
        fields.update(status=D.SUCCEEDED, delivered_at=now, next_attempt_at=None)
        endpoints.exclude(consecutive_failures=0).update(consecutive_failures=0)
    elif attempt <= len(schedule):
        wait = schedule[attempt - 1]
        item = schedule_after_commit(DELIVER_TASK, delivery.pk, countdown=wait)
        fields.update(
            status=D.RETRYING,
            next_attempt_at=item.available_at if item else now + timedelta(seconds=wait),
        )
    else:
        fields.update(status=D.FAILED, next_attempt_at=None)
        endpoints.update(consecutive_failures=F("consecutive_failures") + 1)
        endpoint = endpoints.first()
        limit = settings.HELPDESK_WEBHOOKS_DISABLE_AFTER
        if endpoint and endpoint.is_active and limit and endpoint.consecutive_failures >= limit:
            endpoint_disable(
                endpoint=endpoint,
                actor=None,
                reason=(
                    f"{endpoint.consecutive_failures} deliveries in a row failed after every "
                    f"retry; the last: {_outcome_text(response_status, error)}."
                ),
            )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    delivery.refresh_from_db()
    return delivery


def _outcome_text(response_status, error) -> str:
    if error:
        return error[:300]
    return f"HTTP {response_status}"


@transaction.atomic
def delivery_abandon(*, delivery_id: int, reason: str) -> None:
    """Give up on a delivery without sending it (its endpoint was disabled meanwhile)."""
    WebhookDelivery.objects.filter(pk=delivery_id, status__in=[D.PENDING, D.RETRYING]).update(
        status=D.FAILED, next_attempt_at=None, error=reason[:2000]
    )


@transaction.atomic
def delivery_redeliver(*, delivery: WebhookDelivery, actor) -> WebhookDelivery:
    """Send a finished delivery (failed or succeeded) again: same payload and id (the
    receiver can tell it already has it), a fresh series of attempts."""
    _staff(actor)
    delivery = (
        WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
    )
    if delivery.status not in (D.FAILED, D.SUCCEEDED):
        raise Conflict("This delivery is still being attempted; wait for its outcome.")
    if not delivery.endpoint.is_active and delivery.event != PING:
        raise Conflict("The endpoint is disabled: enable it before redelivering.")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=D.PENDING, attempts=0, next_attempt_at=None, error="", delivered_at=None
    )
    schedule_after_commit(DELIVER_TASK, delivery.pk)
    delivery.refresh_from_db()
    return delivery
