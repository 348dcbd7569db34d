"""Delivery events from the providers' tracking webhooks (django-anymail), recorded on the
message the mail carried.

anymail checks the webhook's signature (or basic auth), normalizes the provider's payload
and sends ``anymail.signals.tracking``; :func:`on_tracking` (connected in
``SupportConfig.ready``) finds the message and records the event through
``services.message_record_delivery``. The message is found by the metadata our mail
carried (``helpdesk_message``, which providers hand back), else by the provider's message
id kept when it was sent, else by our own Message-ID. Opens, clicks and the like are not
recorded; nor are events about mail that carried no message (the resolution notice).
"""

from __future__ import annotations

import logging

from anymail.signals import EventType, tracking

from support.models import Message

logger = logging.getLogger(__name__)

#: anymail's normalized event type → what we record.
RECORDED = {
    EventType.DELIVERED: "delivered",
    EventType.DEFERRED: "deferred",
    EventType.BOUNCED: "bounced",
    EventType.COMPLAINED: "complained",
    EventType.REJECTED: "failed",
    EventType.FAILED: "failed",
}


def _bracketed(message_id: str) -> list[str]:
    bare = message_id.strip().strip("<>")
    return [f"<{bare}>", bare]


def find_message(event) -> Message | None:
    outbound = Message.objects.filter(
        sender_kind__in=[Message.SenderKind.AGENT, Message.SenderKind.AI], is_internal=False
    )
    pk = (event.metadata or {}).get("helpdesk_message")
    if pk and str(pk).isdigit():
        found = outbound.filter(pk=int(pk)).first()
        if found:
            return found
    provider_id = (event.message_id or "").strip()
    if not provider_id:
        return None
    found = outbound.filter(email_message_id__in=_bracketed(provider_id)).first()
    if found:
        return found
    for candidate in dict.fromkeys([provider_id, *_bracketed(provider_id)]):
        found = (
            outbound.exclude(delivery_status="")
            .filter(delivery_events__contains=[{"provider_message_ids": [candidate]}])
            .first()
        )
        if found:
            return found
    return None


def on_tracking(sender, event, esp_name: str, **kwargs) -> None:
    from support import services

    recorded = RECORDED.get(event.event_type)
    if recorded is None:
        return
    message = find_message(event)
    if message is None:
        logger.info(
            "%s %s event for an unknown message %s",
            esp_name,
            event.event_type,
            event.message_id,
            extra={"esp": esp_name, "provider_message_id": event.message_id},
        )
        return
    detail = {
        "esp": esp_name,
        "event_id": str(event.event_id or ""),
        "recipient": event.recipient or "",
        "timestamp": event.timestamp.isoformat() if event.timestamp else "",
        "description": (event.description or "")[:500],
        "mta_response": (event.mta_response or "")[:500],
        "reject_reason": event.reject_reason or "",
        "provider_message_id": str(event.message_id or ""),
    }
    services.message_record_delivery(message=message, event=recorded, detail=detail)


def connect() -> None:
    tracking.connect(on_tracking, dispatch_uid="support.email.tracking")
