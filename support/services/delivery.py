"""What became of the mail a message went out as: sent, then the provider's delivery events.

``Message.delivery_events`` keeps them in order, each a dict with ``event``, ``at`` and what
the provider said (recipient, description, its event id). ``delivery_status`` shows the
most telling one: a bounce or a complaint from any recipient outweighs a delivery to
another, a delivery outweighs an earlier deferral.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from support.models import Message

__all__ = ["message_record_delivery", "message_record_sent"]

#: The events a provider reports that we record, by weight (see the module docstring).
DELIVERY_EVENTS = {"deferred": 1, "delivered": 2, "failed": 3, "bounced": 3, "complained": 4}
_WEIGHT = {"": -1, "sent": 0, **DELIVERY_EVENTS}


def _lock(message: Message) -> Message:
    return Message.objects.select_for_update().get(pk=message.pk)


@transaction.atomic
def message_record_sent(
    *,
    message: Message,
    email_message_id: str,
    provider_message_ids: list[str] = (),
    recipients: list[str] = (),
) -> Message:
    """The message went out by email with this Message-ID (kept: replies name it)."""
    message = _lock(message)
    message.email_message_id = message.email_message_id or email_message_id
    if _WEIGHT[message.delivery_status] < _WEIGHT["sent"]:
        message.delivery_status = "sent"
    message.delivery_events = [
        *message.delivery_events,
        {
            "event": "sent",
            "at": timezone.now().isoformat(),
            "message_id": email_message_id,
            "provider_message_ids": sorted({str(i) for i in provider_message_ids if i}),
            "recipients": list(recipients),
        },
    ]
    message.save(update_fields=["email_message_id", "delivery_status", "delivery_events"])
    return message


@transaction.atomic
def message_record_delivery(*, message: Message, event: str, detail: dict) -> bool:
    """Record a provider's delivery event on the message; False when it was already
    recorded (providers retry their webhooks: the same ``detail["event_id"]`` counts once)."""
    if event not in DELIVERY_EVENTS:
        raise ValueError(f"Unknown delivery event {event!r}.")
    message = _lock(message)
    event_id = detail.get("event_id") or ""
    key = (event, detail.get("recipient"), detail.get("timestamp"))
    for seen in message.delivery_events:
        if event_id and seen.get("event_id") == event_id:
            return False
        if (
            not event_id
            and (seen.get("event"), seen.get("recipient"), seen.get("timestamp")) == key
        ):
            return False
    message.delivery_events = [
        *message.delivery_events,
        {**detail, "event": event, "at": timezone.now().isoformat()},
    ]
    if _WEIGHT[event] > _WEIGHT[message.delivery_status]:
        message.delivery_status = event
    message.save(update_fields=["delivery_status", "delivery_events"])
    return True
