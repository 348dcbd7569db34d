"""Live updates: who hears about a ticket change, in which shape, and when.

Groups on the Channels layer (Redis), joined by the consumers in ``support.consumers``:

- ``ticket.<id>.public``: the customer's view of one ticket (the requester, their
  organization's admin): public messages, the status as customers read it, and in the
  chat widget the AI's answer while it is being written;
- ``ticket.<id>.staff``: the team's view of the same ticket: every message, internal notes
  included, with the AI's model, cost and sources, and the latest event-log rows;
- ``agents.feed``: every change that can move a ticket into or out of the agents' live
  feed (new, escalated, SLA at risk), and, apart from them, the feed's counts for every
  filter (:data:`FEED_COUNTS`).

Services never call this module. ``support.side_effects.after_commit`` calls
:func:`announce` once the transaction has committed, so a rolled-back change is never
announced and a page never shows what the database does not hold. ``announce`` only puts
(kind, ids) on this process's publisher queue and returns: a daemon thread
(:class:`Publisher`, one per process, recreated after a fork) builds the payloads, in the
order the changes committed, and sends them, so a request never waits for templates,
queries or Redis on their account. Each payload is built once per change and audience
(one or two queries, a template render) and sent once per group: the fan-out to sockets
is Redis's and the consumers', which only forward it.

The feed's counts (one GROUP BY over every open ticket) are not part of each change: the
publisher computes them at most once per ``HELPDESK_FEED_COUNTS_INTERVAL`` seconds (1)
per process after changes that can move them, and right away after a quiet spell, so a
burst of changes costs a couple of count queries, not one each, and the pages show
right counts within about that interval.

Sending never fails the caller, and Redis or database trouble never stops the publisher
(it is logged; a full queue drops the update). A lost update is caught up by the page on
its next (re)connection, which asks for the messages after the last id it has (the feed
asks for a snapshot every minute). Tests and scripts wait for what was announced with
:func:`flush`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import queue
import threading
import time
import uuid

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
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
FEED_COUNTS = "feed.counts"

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


def payloads(kind: str, ids: dict) -> list[tuple[str, dict]]:
    """The (group, message) pairs that announce a committed change (``after_commit``'s
    ``kind`` and ids); none when the ticket is gone."""
    ticket = (
        Ticket.objects.select_related("requester", "organization", "assignee", "team")
        .filter(pk=ids.get("ticket_id"))
        .first()
    )
    if ticket is None:
        return []
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
    if moves_feed(kind):
        sends.append(
            (
                FEED_GROUP,
                {
                    "type": FEED_EVENT,
                    "change": kind,
                    "ticket": feed_entry(ticket, timezone.now()),
                },
            )
        )
    return sends


def moves_feed(kind: str) -> bool:
    """Whether a change of this kind can move a ticket in the feed (and its counts)."""
    return kind not in NOT_IN_FEED


def publish(kind: str, ids: dict) -> None:
    """Build and send the announcement of a committed change now, in the calling thread,
    without the feed's counts (changes go through :func:`announce`; this is the
    publisher's work for one change, for scripts and benchmarks)."""
    send(payloads(kind, ids), context={"effect": kind, **ids})


def counts_message(now=None) -> tuple[str, dict]:
    """The feed's counts for every filter, as one message to the feed group (the feed
    consumer picks each agent's filter)."""
    counts = selectors.feed_counts(now=now or timezone.now())
    return (FEED_GROUP, {"type": FEED_COUNTS, "counts": counts})


def announce(kind: str, ids: dict) -> None:
    """Hand a committed change to this process's publisher and return at once.

    Called by ``after_commit`` once the transaction committed. Inside a transaction that
    is still open (tests that run on-commit callbacks inside theirs), the publisher's own
    connection could not see the rows yet: the change is published here and now, counts
    included."""
    if connection.in_atomic_block:
        sends = payloads(kind, ids)
        if moves_feed(kind):
            sends.append(counts_message())
        send(sends, context={"effect": kind, **ids})
        return
    _publisher.put(kind, ids)


def flush(timeout: float = 5.0, *, counts: bool = True) -> bool:
    """Wait until everything announced so far in this process is sent, and with
    ``counts`` the feed's counts owed too (sent now rather than at the end of their
    interval); True when done within ``timeout`` seconds. For tests, scripts, benchmarks
    and the end of a streamed answer: requests never wait."""
    return _publisher.flush(timeout, counts=counts)


class Publisher:
    """The live updates of one process, off the request thread.

    ``put`` queues a committed change (bounded: when the queue is full, the update is
    dropped and logged, never waited for). One daemon thread takes the changes in the
    order they were put (so per ticket in commit order: a message before a later status
    change), a batch at a time: it builds every payload of the batch, sends them in one
    round of ``group_send``, then the feed's counts when they are owed and the interval
    since the last ones has passed. Between batches its database connection is released
    as Django releases a request's (``close_if_unusable_or_obsolete``: closed, or given
    back to the pool), so a broken one is never reused. No error stops the thread.
    Recreated after a fork, like the sender loop."""

    #: Most changes built and sent in one round.
    batch_size = 100

    def __init__(self, *, maxsize: int = 10_000):
        self.maxsize = maxsize
        self.forget()

    def forget(self) -> None:
        """Start afresh (in a forked child: the parent's thread, queue and lock, possibly
        held by a thread that does not exist here, are not this process's)."""
        self._lock = threading.Condition()
        self._pid = 0
        self._queue: queue.Queue | None = None
        self._unfinished = 0  # put and not yet sent
        self._counts_owed = False
        self._counts_at = float("-inf")  # time.monotonic() of the last counts sent
        self._flushing = 0

    @staticmethod
    def interval() -> float:
        return float(getattr(settings, "HELPDESK_FEED_COUNTS_INTERVAL", 1.0))

    def put(self, kind: str, ids: dict) -> None:
        with self._lock:
            if self._queue is None or self._pid != os.getpid():
                self._start()
            try:
                self._queue.put_nowait((kind, ids))
            except queue.Full:
                logger.warning(
                    "live update dropped: the publisher is behind", extra={"effect": kind, **ids}
                )
                return
            self._unfinished += 1

    def _start(self) -> None:
        self._pid = os.getpid()
        self._queue = queue.Queue(maxsize=self.maxsize)
        threading.Thread(
            target=self._run, args=(self._queue,), name="live-publisher", daemon=True
        ).start()

    def flush(self, timeout: float, *, counts: bool = True) -> bool:
        with self._lock:
            if self._queue is None or self._pid != os.getpid():
                return True
            if not counts:
                return self._lock.wait_for(lambda: not self._unfinished, timeout=timeout)
            self._flushing += 1
            with contextlib.suppress(queue.Full):  # a full queue wakes it anyway
                self._queue.put_nowait(None)  # wakes the thread if it waits for counts
            try:
                return self._lock.wait_for(
                    lambda: not self._unfinished and not self._counts_owed, timeout=timeout
                )
            finally:
                self._flushing -= 1

    def _run(self, changes: queue.Queue) -> None:
        while True:
            batch: list = []
            try:
                batch = self._next_batch(changes)
                self._publish(batch)
            except Exception:  # Redis, the database, a bug: logged; the thread goes on
                logger.exception("live publisher round failed")
            finally:
                self._release_connection()
                with self._lock:
                    self._unfinished -= sum(1 for item in batch if item is not None)
                    self._lock.notify_all()

    def _next_batch(self, changes: queue.Queue) -> list:
        """Wait for changes, or until the counts owed are due; then take what is queued."""
        timeout = None
        with self._lock:
            if self._counts_owed and not self._flushing:
                timeout = max(0.0, self._counts_at + self.interval() - time.monotonic())
        try:
            batch = [changes.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(batch) < self.batch_size:
            try:
                batch.append(changes.get_nowait())
            except queue.Empty:
                break
        return batch

    def _publish(self, batch: list) -> None:
        sends: list[tuple[str, dict]] = []
        feed_moved = False
        for item in batch:
            if item is None:  # a flush's wake-up call
                continue
            kind, ids = item
            try:
                sends.extend(payloads(kind, ids))
            except Exception:  # one bad change never holds up the others
                logger.exception("live update not built", extra={"effect": kind, **ids})
                self._release_connection()
                continue
            feed_moved = feed_moved or moves_feed(kind)
        with self._lock:
            self._counts_owed = self._counts_owed or feed_moved
            due = self._counts_owed and (
                self._flushing or time.monotonic() >= self._counts_at + self.interval()
            )
        if due:
            try:
                sends.append(counts_message())
            except Exception:
                logger.exception("feed counts not computed")
            with self._lock:
                self._counts_owed, self._counts_at = False, time.monotonic()
        # Redis's time grows with the batch: the wait for it does too.
        timeout = SEND_TIMEOUT + 0.01 * len(sends)
        send(sends, context={"effect": "batch", "changes": len(batch)}, timeout=timeout)

    @staticmethod
    def _release_connection() -> None:
        try:
            connection.close_if_unusable_or_obsolete()
        except Exception:
            logger.warning("live publisher: closing its connection failed", exc_info=True)


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
_publisher = Publisher()
os.register_at_fork(after_in_child=_publisher.forget)
# A script or a worker that ends right after a change still sends it.
atexit.register(_publisher.flush, 2.0)
#: Longest wait for Redis before a live update is given up (and logged): the publisher
#: (or a worker streaming an answer) is held no longer than this while Redis is away.
SEND_TIMEOUT = 1.0


def send(
    sends: list[tuple[str, dict]], *, context: dict | None = None, timeout: float = SEND_TIMEOUT
) -> None:
    """``group_send`` each (group, message) in order, from synchronous code; never raises."""
    layer = get_channel_layer()
    if layer is None or not sends:
        return

    async def send_all():
        for group, message in sends:
            await layer.group_send(group, message)

    try:
        _sender.run(send_all(), timeout=timeout)
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
        # The answer itself (announced after its commit) reaches the page first.
        flush(SEND_TIMEOUT, counts=False)
        send([self._event("stream.end", outcome=outcome)], context={"stream": self.id})
