"""Outbound webhooks: which changes become which events, and what their JSON says.

Staff register endpoints (admin, ``/api/automation/webhooks/``) that subscribe to events.
Each change announced by support (``ticket_activity``) or feedback
(``feature_request_status_changed``) is mapped to events here, *inside the change's
transaction*: one :class:`~automation.models.WebhookDelivery` row per subscribed active
endpoint, its payload built now (it says what was true at the change), and its sending
owed through the outbox (``automation.tasks.deliver_webhook``). A change that rolls back
queues nothing. With no subscribed endpoint a change costs no query: the list of active
subscriptions is cached briefly and dropped by every endpoint change
(:func:`invalidate_subscriptions`).

Events
------

=================================  ==========================================================
``ticket.created``                 a ticket was opened (portal, API, chat, email); its
                                   ``message`` is the opening message (the description)
``ticket.updated``                 its status, priority, assignee, type, subject or team
                                   changed (``changes`` lists each field's old and new value;
                                   a resolution is also a status change)
``ticket.resolved``                the ticket was resolved
``message.added``                  a reply: the customer's, an agent's or the AI's public
                                   reply; staff-only notes only to endpoints that opted in
                                   (``include_internal``), marked ``"internal": true``;
                                   otherwise left out entirely
``feature_request.status_changed`` a feature request moved on the roadmap
``rule.action``                    an automation rule's "call webhook" action (sent to the
                                   endpoint the rule names, whatever it subscribes to)
``ping``                           "send test ping" (admin, API)
=================================  ==========================================================

Body (``Content-Type: application/json``, UTF-8)::

    {
      "id": "7d0c…",                   # the delivery's uuid, also X-Helpdesk-Delivery
      "event": "ticket.updated",
      "created_at": "2026-12-02T05:10:04.332000+00:00",
      "data": {
        "ticket": {
          "id": 42, "reference": "HD-20261202-0001", "subject": "…",
          "status": "open", "priority": "high", "type": "billing", "channel": "web",
          "organization": "Acme" | null, "team": "Billing" | null,
          "assignee": {"id": 7, "username": "agent-a", "name": "Ada Agent"} | null,
          "requester": {"email": "casey@example.com", "name": "Casey"},
          "created_at": "…", "updated_at": "…",
          "url": "https://help.example.com/tickets/HD-20261202-0001/",
          "admin_url": "https://help.example.com/admin/support/ticket/42/change/"
        },
        "changes": [{"field": "priority", "old": "normal", "new": "high"}],
        "message": {                   # message.added; ticket.created: the description
          "id": 9, "sender_kind": "customer" | "agent" | "ai" | "system",
          "author": "Casey" | null, "body": "…", "internal": false, "created_at": "…",
          "attachments": [{"filename": "log.txt", "content_type": "text/plain", "size": 812}]
        }
      }
    }

``feature_request.status_changed`` has ``data = {"feature_request": {"id", "title",
"kind", "status", "url", "upvotes", "downvotes"}, "changes": [{"field": "status", "old",
"new"}]}``; ``rule.action`` has ``data = {"ticket": {…}, "rule": {"id", "name"}}``;
``ping`` has ``data = {"endpoint": {"id", "name"}, "message": "…"}``. Attachments are
described, never sent; no secret, no AI reasoning, no internal note (unless opted in)
ever leaves.

Signature
---------

Every request carries ``X-Helpdesk-Event``, ``X-Helpdesk-Delivery`` (the uuid: deduplicate
on it, a delivery can arrive twice), ``X-Helpdesk-Timestamp`` (unix seconds) and
``X-Helpdesk-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{raw body}")>``.
A receiver verifies it on the raw bytes, before parsing, and refuses old timestamps
(replays)::

    import hashlib, hmac, time

    def verify(secret: str, headers, body: bytes, tolerance: int = 300) -> bool:
        timestamp = headers["X-Helpdesk-Timestamp"]
        if abs(time.time() - int(timestamp)) > tolerance:
            return False
        expected = hmac.new(
            secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        given = headers["X-Helpdesk-Signature"].removeprefix("v1=")
        return hmac.compare_digest(expected, given)

Delivery
--------

A 2xx answer within the timeout (connect 5 s; 10 s for the answer, checked again between
reads of its body) is success; redirects are not followed (a 3xx is a failure).
Otherwise the attempt is recorded (status, the first 2 KB of the body, milliseconds,
error) and retried after ``HELPDESK_WEBHOOKS_RETRY_SCHEDULE`` (1 min, 5 min, 30 min, 2 h,
6 h, 12 h), each next attempt owed through the outbox in the transaction that records the
failed one; after the last one the delivery has failed. When
``HELPDESK_WEBHOOKS_DISABLE_AFTER`` deliveries in a row failed for good the endpoint is
disabled and managers are emailed; enabling it again resets the count. Addresses on
private, loopback, link-local or reserved networks are refused (checked on the resolved
address, which is then the one connected to), unless ``HELPDESK_WEBHOOKS_ALLOW_PRIVATE``
(on under DEBUG and tests).

"Redeliver" (admin, API) sends a finished delivery again with the same body and
``X-Helpdesk-Delivery``, freshly timestamped and signed: a receiver that already has it
can tell. Rotating the secret takes effect from the next attempt on.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from core.errors import DomainError
from core.net import (  # shared with support's HTTP actions; kept importable from here
    AddressRefused,  # noqa: F401
    check_url_syntax,  # noqa: F401
    pinned_request,
    resolve_public,
)

#: Kinds of ``ticket_activity`` that add a message worth a ``message.added``.
MESSAGE_KINDS = {"public_reply", "customer_replied", "message_added"}
#: Ticket fields whose change is a ``ticket.updated``.
UPDATED_FIELDS = ("status", "priority", "assignee", "type", "subject", "team")

_CACHE_KEY = "automation:webhooks:subscriptions:v1"


# --------------------------------------------------------------------------------------
# Subscriptions (cached)
# --------------------------------------------------------------------------------------


def subscriptions() -> list[dict]:
    """Active endpoints as ``{"id", "events", "include_internal"}``, cached briefly
    (``HELPDESK_WEBHOOKS_SUBSCRIPTIONS_CACHE_SECONDS``)."""
    from automation.models import WebhookEndpoint

    cached = cache.get(_CACHE_KEY)
    if cached is not None:
        return cached
    rows = list(
        WebhookEndpoint.objects.filter(is_active=True).values("id", "events", "include_internal")
    )
    # Inside a transaction that changed an endpoint the list may not be what others see:
    # only a committed view is cached (the services drop the key on commit anyway).
    cache.set(_CACHE_KEY, rows, settings.HELPDESK_WEBHOOKS_SUBSCRIPTIONS_CACHE_SECONDS)
    return rows


def invalidate_subscriptions() -> None:
    """Forget the cached list now and again when the current transaction commits."""
    cache.delete(_CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(_CACHE_KEY))


def _subscribers(event: str) -> list[dict]:
    return [row for row in subscriptions() if event in row["events"]]


# --------------------------------------------------------------------------------------
# What a change means
# --------------------------------------------------------------------------------------


def on_ticket_activity(*, ticket_id: int, kind: str, events: list) -> None:
    """Queue the webhook deliveries that a ticket change owes (in its transaction)."""
    subs = subscriptions()
    if not subs:
        return
    wanted = {event for row in subs for event in row["events"]}
    changes = _changes(events)
    planned: list[str] = []
    if kind == "ticket_opened":
        planned.append("ticket.created")
    elif changes:
        planned.append("ticket.updated")
    if kind == "resolved":
        planned.append("ticket.resolved")
    message_ids = []
    if kind in MESSAGE_KINDS:
        message_ids = [
            e.metadata.get("message_id")
            for e in events
            if e.kind == "message_added" and e.metadata.get("message_id")
        ]
        if message_ids:
            planned.append("message.added")
    planned = [event for event in planned if event in wanted]
    if not planned:
        return
    ticket = _load_ticket(ticket_id)
    if ticket is None:
        return
    ticket_data = ticket_payload(ticket)
    from automation.services import webhooks as services

    for event in planned:
        if event == "message.added":
            continue
        data = {"ticket": ticket_data, "changes": changes if event != "ticket.created" else []}
        if event == "ticket.created":
            first = _first_message(ticket)
            if first is not None:
                data["message"] = message_payload(first)
        services.deliveries_queue(
            endpoint_ids=[row["id"] for row in _subscribers(event)], event=event, data=data
        )
    if "message.added" in planned:
        from support.models import Message

        messages = (
            Message.objects.filter(pk__in=message_ids)
            .select_related("author")
            .prefetch_related("attachments")
            .order_by("created_at", "id")
        )
        for message in messages:
            targets = [
                row["id"]
                for row in _subscribers("message.added")
                if row["include_internal"] or not message.is_internal
            ]
            data = {"ticket": ticket_data, "changes": [], "message": message_payload(message)}
            services.deliveries_queue(endpoint_ids=targets, event="message.added", data=data)


def on_feature_request_status(*, feature_request_id: int, old: str, new: str) -> None:
    """A feature request moved: ``feature_request.status_changed`` to its subscribers."""
    targets = [row["id"] for row in _subscribers("feature_request.status_changed")]
    if not targets:
        return
    from django.apps import apps

    # feedback is beside automation (no import between them): the model by its label.
    request = (
        apps.get_model("feedback", "FeatureRequest").objects.filter(pk=feature_request_id).first()
    )
    if request is None:
        return
    data = {
        "feature_request": {
            "id": request.pk,
            "title": request.title,
            "kind": request.kind,
            "status": request.status,
            "url": f"{settings.SITE_URL}{request.get_absolute_url()}",
            "upvotes": request.upvotes,
            "downvotes": request.downvotes,
        },
        "changes": [{"field": "status", "old": old, "new": new}],
    }
    from automation.services import webhooks as services

    services.deliveries_queue(
        endpoint_ids=targets, event="feature_request.status_changed", data=data
    )


def queue_rule_call(*, endpoint_id: int, ticket, rule):
    """A rule's "call webhook" action: a ``rule.action`` delivery to that endpoint (in the
    rule's transaction). Returns the delivery, or None when the endpoint is gone or
    disabled (a disabled endpoint receives nothing until staff enable it again)."""
    from automation.services import webhooks as services

    ticket = _load_ticket(ticket.pk) or ticket
    data = {
        "ticket": ticket_payload(ticket),
        "rule": {"id": getattr(rule, "pk", None), "name": getattr(rule, "name", str(rule))},
    }
    queued = services.deliveries_queue(
        endpoint_ids=[endpoint_id], event="rule.action", data=data, active_only=True
    )
    return queued[0] if queued else None


def _changes(events: list) -> list[dict]:
    return [
        {"field": e.field, "old": e.old_value or None, "new": e.new_value or None}
        for e in events
        if e.field in UPDATED_FIELDS and not e.is_internal
    ]


# --------------------------------------------------------------------------------------
# Payloads
# --------------------------------------------------------------------------------------


def _load_ticket(ticket_id: int):
    from support.models import Ticket

    return (
        Ticket.objects.select_related("requester", "organization", "team", "assignee")
        .filter(pk=ticket_id)
        .first()
    )


def _first_message(ticket):
    """The customer's opening message (the description), never an internal note."""
    return (
        ticket.messages.filter(is_internal=False)
        .select_related("author")
        .prefetch_related("attachments")
        .order_by("created_at", "id")
        .first()
    )


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user else ""


def ticket_payload(ticket) -> dict:
    requester = ticket.requester
    assignee = ticket.assignee
    return {
        "id": ticket.pk,
        "reference": ticket.reference,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "type": ticket.type,
        "channel": ticket.channel,
        "organization": ticket.organization.name if ticket.organization_id else None,
        "team": ticket.team.name if ticket.team_id else None,
        "assignee": {
            "id": assignee.pk,
            "username": assignee.get_username(),
            "name": _name(assignee),
        }
        if assignee
        else None,
        "requester": {"email": requester.email, "name": _name(requester)} if requester else None,
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "url": f"{settings.SITE_URL}{ticket.get_absolute_url()}",
        "admin_url": f"{settings.SITE_URL}/admin/support/ticket/{ticket.pk}/change/",
    }


def message_payload(message) -> dict:
    return {
        "id": message.pk,
        "sender_kind": message.sender_kind,
        "author": _name(message.author) or None,
        "body": message.body,
        "internal": message.is_internal,
        "created_at": _iso(message.created_at),
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in message.attachments.all()
        ],
    }


def envelope(*, delivery_id: uuid.UUID, event: str, data: dict) -> dict:
    return {
        "id": str(delivery_id),
        "event": event,
        "created_at": timezone.now().isoformat(),
        "data": data,
    }


# --------------------------------------------------------------------------------------
# Signing (the address check is in core.net)
# --------------------------------------------------------------------------------------


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


# --------------------------------------------------------------------------------------
# Sending (the delivery task calls this, outside any transaction)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    response_status: int | None = None
    response_body: str = ""
    response_ms: int | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300


def body_of(payload: dict) -> bytes:
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def send(*, url: str, secret: str, event: str, delivery_uuid, payload: dict) -> Outcome:
    """POST the signed payload once; never raises (what went wrong is in the outcome).

    The host is resolved and checked first and the request goes to that checked address
    (TLS still verifies the host name), so a DNS answer that changes between the check and
    the connection cannot point it inside the network.
    """
    import httpx

    body = body_of(payload)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Helpdesk-Webhooks/1",
        "X-Helpdesk-Event": event,
        "X-Helpdesk-Delivery": str(delivery_uuid),
        "X-Helpdesk-Timestamp": timestamp,
        "X-Helpdesk-Signature": sign(secret, timestamp, body),
    }
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        addresses = resolve_public(url)
    except DomainError as exc:
        return Outcome(error=f"refused: {exc.message}", response_ms=elapsed())
    # Connect to an address just checked (the next one if it refuses the connection).
    total = settings.HELPDESK_WEBHOOKS_TIMEOUT_SECONDS
    timeout = httpx.Timeout(total, connect=settings.HELPDESK_WEBHOOKS_CONNECT_TIMEOUT_SECONDS)
    try:
        with pinned_request(
            "POST", url, addresses, timeout=timeout, headers=headers, content=body
        ) as response:
            received = b""
            for chunk in response.iter_bytes():
                received += chunk
                if len(received) >= 2048:
                    break
                if time.monotonic() - started > total:
                    raise httpx.ReadTimeout("the whole answer took too long")
    except httpx.TimeoutException as exc:
        return Outcome(error=f"timeout: {type(exc).__name__}: {exc}", response_ms=elapsed())
    except (httpx.HTTPError, OSError) as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}", response_ms=elapsed())
    text = received[:2048].decode("utf-8", errors="replace")
    error = ""
    if response.is_redirect:
        error = f"redirect to {response.headers.get('location', '?')} not followed"
    elif not 200 <= response.status_code < 300:
        error = f"HTTP {response.status_code}"
    return Outcome(
        response_status=response.status_code,
        response_body=text,
        response_ms=elapsed(),
        error=error,
    )
