"""Live updates: who hears about a ticket change, in which shape, and when.

Groups on the Channels layer (Redis), joined by the consumers in ``support.consumers``:

- ``ticket.<id>.public``: the customer's view of one ticket (the requester, their
  organization's admin): public messages, the status as customers read it, and in the
  chat widget the AI's answer while it is being written;
- ``ticket.<id>.staff``: the team's view of the same ticket: every message, internal notes
  included, with the AI's model, cost and sources, and the latest event-log rows;
- ``agents.feed``: every change that can move a ticket into or out of the agents' live
  feed (new, escalated, SLA at risk), with the feed's counts for every filter.

Services never call this module. ``support.side_effects.after_commit`` calls
:func:`publish` once the transaction has committed, so a rolled-back change is never
announced and a page never shows what the database does not hold. Each payload is built
once per change and audience (one or two queries, a template render) and sent once per
group: the fan-out to sockets is Redis's and the consumers', which only forward it.
Sending never fails the caller; a lost update is caught up by the page on its next
(re)connection, which asks for the messages after the last id it has.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import uuid

from channels.layers import get_channel_layer
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import dateformat, timezone

from support import selectors
from support.models import Message, Ticket
from support.templatetags.support_tags import customer_status, status_class

logger = logging.getLogger(__name__)

FEED_GROUP = "agents.feed"
#: Group message types: forwarded as they are, or shaped per agent by the feed consumer.
LIVE_EVENT = "live.event"
FEED_EVENT = "feed.ticket"

#: Changes that add a message to the conversation (with ``message_id``).
MESSAGE_KINDS = frozenset({"public_reply", "customer_replied", "message_added"})
#: Changes after which the ticket's own fields are as they were (an internal note, a
#: system message): only the message is announced.
FIELDS_UNCHANGED = frozenset({"message_added"})
#: Changes that cannot move a ticket in the feed.
NOT_IN_FEED = frozenset({"message_added", "rated"})
#: How many recent event-log rows a staff page receives with each change.
RECENT_EVENTS = 20


def ticket_group(ticket_id: int, *, staff: bool) -> str:
    return f"ticket.{ticket_id}.{'staff' if staff else 'public'}"


def _display(moment) -> str:
    return dateformat.format(timezone.localtime(moment), "Y-m-d H:i") if moment else "—"


def _name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user else ""


# ======================================================================================
# Payloads (JSON-ready dicts; a "type" says what each one is)
# ======================================================================================


def sender_label(message: Message, *, staff: bool) -> str:
    kind, author = message.sender_kind, message.author
    if staff:
        label = message.get_sender_kind_display()
        return f"{label} · {_name(author)}" if author else label
    if kind == Message.SenderKind.AI:
        return "AI assistant"
    if kind == Message.SenderKind.AGENT:
        return f"{(author.get_full_name() if author else '') or 'Support team'} · Support"
    if kind == Message.SenderKind.SYSTEM:
        return "Helpdesk"
    return _name(author)


def message_payload(message: Message, *, staff: bool) -> dict:
    """One message as the portal (``staff=False``) or the agent workspace shows it: the
    fields, and ``html``, the page's own markup for it (the template the page renders
    with, so a live message looks exactly like one loaded with the page). Announced
    live, it also carries ``state``: the ticket's state after it (:func:`ticket_payload`),
    unless the message changed nothing else (an internal note, a system message)."""
    ticket = message.ticket
    template = "admin/support/ticket/_message.html" if staff else "support/_message.html"
    data = {
        "type": "message",
        "ticket": ticket.reference,
        "id": message.pk,
        "sender_kind": message.sender_kind,
        "sender": sender_label(message, staff=staff),
        "body": message.body,
        "is_internal": message.is_internal,
        "created_at": message.created_at.isoformat(),
        "attachments": [
            {
                "id": attachment.pk,
                "filename": attachment.filename,
                "size": attachment.size,
                "url": reverse("support:attachment", args=[ticket.reference, attachment.pk]),
            }
            for attachment in message.attachments.all()
        ],
        "html": render_to_string(template, {"message": message, "ticket": ticket}),
    }
    if staff:
        # The agent's page tells its own messages from others' (the collision warning).
        data["author_id"] = message.author_id
        data["author"] = _name(message.author)
    if staff and message.sender_kind == Message.SenderKind.AI:
        data["ai"] = {
            "model": message.ai_model,
            "confidence": message.ai_confidence,
            "input_tokens": message.input_tokens,
            "output_tokens": message.output_tokens,
            "cost_usd": str(message.cost_usd) if message.cost_usd is not None else None,
            "latency_ms": message.latency_ms,
            "article_ids": list(message.article_ids),
            "decision": message.ai_decision,
        }
    return data


def _number(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def ticket_payload(ticket: Ticket, *, staff: bool) -> dict:
    """The ticket's state as the page shows it; ``fields`` are the texts of the page's
    ``data-live-field`` elements."""
    data = {
        "type": "ticket",
        "ticket": ticket.reference,
        "status": ticket.status,
        "is_open": ticket.is_open,
        "priority": ticket.priority,
    }
    if not staff:
        label = customer_status(ticket)
        assignee = ticket.assignee
        return {
            **data,
            "status_label": label,
            "badge_class": f"badge {status_class(ticket.status)}",
            "fields": {
                "status": label,
                "type": ticket.get_type_display(),
                "priority": ticket.get_priority_display(),
                "handled_by": (assignee.get_full_name() or assignee.get_username())
                if assignee
                else "",
            },
        }
    events = list(
        ticket.events.select_related("actor").order_by("-created_at", "-id")[:RECENT_EVENTS]
    )
    rating = ticket.satisfaction_rating
    return {
        **data,
        "status_label": ticket.get_status_display(),
        "badge_class": f"hd-badge hd-status-{ticket.status}",
        "priority_label": ticket.get_priority_display(),
        "priority_class": f"hd-badge hd-priority-{ticket.priority}",
        "assignee_id": ticket.assignee_id,
        "fields": {
            "assignee": (str(ticket.assignee) if ticket.assignee else "—")
            + (f" ({ticket.team})" if ticket.team else ""),
            "sla_due": "paused" if ticket.sla_paused else _display(ticket.sla_due_at),
            "first_response": _display(ticket.first_response_at),
            "ai_confidence": _number(ticket.ai_confidence),
            "sentiment": _number(ticket.sentiment),
            "satisfaction": f"{rating}/5 {ticket.satisfaction_comment}".strip() if rating else "—",
        },
        "events": [
            {
                "id": event.pk,
                "when": dateformat.format(timezone.localtime(event.created_at), "Y-m-d H:i:s"),
                "description": event.description,
                "who": str(event.actor) if event.actor else event.get_actor_kind_display(),
            }
            for event in reversed(events)
        ],
    }


def feed_entry(ticket: Ticket, now) -> dict:
    """One ticket as a card of the agents' live feed."""
    return {
        "reference": ticket.reference,
        "subject": ticket.subject,
        "status": ticket.status,
        "status_label": ticket.get_status_display(),
        "priority": ticket.priority,
        "priority_label": ticket.get_priority_display(),
        "assignee_id": ticket.assignee_id,
        "assignee": _name(ticket.assignee) or None,
        "team": ticket.team.name if ticket.team else None,
        "requester": ticket.requester.email or ticket.requester.get_username(),
        "organization": ticket.organization.name if ticket.organization else None,
        "channel": ticket.channel,
        "created_at": ticket.created_at.isoformat(),
        "sla_due_at": ticket.sla_due_at.isoformat() if ticket.sla_due_at else None,
        "sla_breached": ticket.sla_breached(now),
        "sla_paused": ticket.sla_paused,
        "buckets": selectors.feed_buckets_of(ticket, now),
        "url": reverse("admin:support_ticket_change", args=[ticket.pk]),
    }


# ======================================================================================
# Publishing
# ======================================================================================


def _live(payload: dict) -> dict:
    # Serialized once here rather than by each of the group's sockets.
    return {"type": LIVE_EVENT, "text": json.dumps(payload, separators=(",", ":"))}


def publish(kind: str, ids: dict) -> None:
    """Announce a committed change (``after_commit``'s ``kind`` and ids) to its groups."""
    ticket = (
        Ticket.objects.select_related("requester", "organization", "assignee", "team")
        .filter(pk=ids.get("ticket_id"))
        .first()
    )
    if ticket is None:
        return
    staff, public = ticket_group(ticket.pk, staff=True), ticket_group(ticket.pk, staff=False)
    fields_changed = kind not in FIELDS_UNCHANGED
    message = None
    if kind in MESSAGE_KINDS and ids.get("message_id"):
        message = (
            Message.objects.select_related("author")
            .prefetch_related("attachments")
            .filter(pk=ids["message_id"], ticket=ticket)
            .first()
        )
    sends: list[tuple[str, dict]] = []
    for group, for_staff in ((staff, True), (public, False)):
        state = ticket_payload(ticket, staff=for_staff) if fields_changed else None
        if message is not None and (for_staff or not message.is_internal):
            # One frame per change and socket: the message carries the state it led to.
            message.ticket = ticket
            payload = message_payload(message, staff=for_staff)
            sends.append((group, _live({**payload, "state": state} if state else payload)))
        elif state is not None:
            sends.append((group, _live(state)))
    if kind not in NOT_IN_FEED:
        now = timezone.now()
        sends.append(
            (
                FEED_GROUP,
                {
                    "type": FEED_EVENT,
                    "change": kind,
                    "ticket": feed_entry(ticket, now),
                    "counts": selectors.feed_counts(now=now),
                },
            )
        )
    send(sends, context={"effect": kind, **ids})


class _SenderLoop:
    """One event loop in a daemon thread, for synchronous callers (views run in threads,
    Celery workers, scripts): their ``group_send`` calls reuse its Redis connections
    instead of opening a loop and a connection each time. Recreated after a fork."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def run(self, coroutine, *, timeout: float):
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                threading.Thread(
                    target=self._loop.run_forever, name="live-updates", daemon=True
                ).start()
            loop = self._loop
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()  # and stop waiting on Redis in the loop as well
            raise


_sender = _SenderLoop()
#: Longest wait for Redis before a live update is given up (and logged): a request that
#: changed a ticket is held no longer than this while Redis is away.
SEND_TIMEOUT = 1.0


def send(sends: list[tuple[str, dict]], *, context: dict | None = None) -> None:
    """``group_send`` each (group, message) in order, from synchronous code; never raises."""
    layer = get_channel_layer()
    if layer is None or not sends:
        return

    async def send_all():
        for group, message in sends:
            await layer.group_send(group, message)

    try:
        _sender.run(send_all(), timeout=SEND_TIMEOUT)
    except Exception:  # Redis down: the change is committed; pages catch up on reconnect
        logger.exception("live update not sent", extra=context or {})


# ======================================================================================
# The AI's answer while it is written (chat widget)
# ======================================================================================


class AnswerStream:
    """Shows a chat customer the AI's answer as the provider generates it.

    ``update`` receives the provider's partial result (``on_partial``) and sends the answer
    written so far to the ticket's public group, at most every ``interval`` seconds
    (``stream.start``, then ``stream.delta`` with the whole text so far, so a page that
    joins late still shows all of it). ``finish`` ends it (``stream.end`` with the
    analysis's outcome). The draft is provisional: the answer itself arrives as a normal
    message after its transaction commits, and when the agent decides to hand over to a
    person instead, the page drops the draft.
    """

    interval = 0.1

    def __init__(self, ticket: Ticket):
        self.group = ticket_group(ticket.pk, staff=False)
        self.reference = ticket.reference
        self.id = uuid.uuid4().hex[:16]
        self.text = ""
        self._sent = ""
        self._started = False
        self._last = 0.0

    def _event(self, type_: str, **fields) -> tuple[str, dict]:
        payload = {"type": type_, "ticket": self.reference, "stream": self.id, **fields}
        return (self.group, _live(payload))

    def update(self, partial: dict) -> None:
        answer = partial.get("answer")
        if not isinstance(answer, str) or not answer or answer == self.text:
            return
        self.text = answer
        if time.monotonic() - self._last >= self.interval:
            self._flush()

    def _flush(self) -> None:
        sends = []
        if not self._started:
            sends.append(self._event("stream.start"))
            self._started = True
        if self.text != self._sent:
            sends.append(self._event("stream.delta", text=self.text))
            self._sent = self.text
        send(sends, context={"stream": self.id})
        self._last = time.monotonic()

    def finish(self, outcome: str) -> None:
        """``outcome`` is what the analysis did: resolved, asked, escalated, superseded,
        failed. Nothing is sent when no answer was ever streamed."""
        if not self.text:
            return
        if self.text != self._sent or not self._started:
            self._flush()
        send([self._event("stream.end", outcome=outcome)], context={"stream": self.id})
