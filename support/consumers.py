"""WebSocket consumers: live ticket pages, the agents' live feed and the chat widget.

Every endpoint speaks JSON text frames: the client sends ``{"action": …}``, the server
sends ``{"type": …}``. A connection is accepted, then

- refused with an ``error`` frame and closed when nobody is signed in (close code 4401,
  ``unauthenticated``) or when it is the wrong kind of user for the endpoint (4403);
- otherwise greeted with ``hello`` (who is connected, and the limits below).

Limits per connection (settings ``HELPDESK_WS_*``): a frame larger than
``HELPDESK_WS_MAX_MESSAGE_BYTES`` is answered ``message_too_large`` and ignored; more
than ``HELPDESK_WS_BURST`` frames at once, refilled at ``HELPDESK_WS_MESSAGES_PER_MINUTE``,
are answered ``rate_limited`` (with ``retry_after`` seconds), and a client that keeps
sending after that is closed (4429). ``{"action": "ping"}`` answers ``pong`` anywhere.
A frame holding a NUL (``\\u0000``) or a lone surrogate anywhere, or JSON nested deeper
than ``core.limits.MAX_JSON_DEPTH``, is answered ``invalid``; a text longer than its
limit in ``core.limits`` (the chat's ``message``, ``body``, ``reason``) ``too_long``
with the ``field`` and its ``limit``.

``/ws/tickets/`` (anyone signed in): ``subscribe`` ``{ticket, after?}`` joins the
ticket's public or staff group (``support.realtime``) and answers ``subscribed`` with the
ticket's state and the visible messages after the id ``after`` (the page's last one: the
resync after a reconnect); a ticket the user may not see is refused with ``forbidden``
(the same answer whether or not it exists) and logged. ``unsubscribe`` ``{ticket}``.
Then ``message`` frames (with ``state``, the ticket after the message) and ``ticket``
frames (the state after any other change) arrive as things happen; internal notes only
on staff connections. Staff connections also share presence (``support.presence``): a
subscription says "viewing", ``presence`` ``{ticket, state: viewing | typing | idle}``
changes it and, repeated every ~15 s, keeps it alive; unsubscribing or leaving removes
it. The other staff connections of the ticket then receive ``presence`` ``{ticket,
agents: [{id, name, state, since}]}`` (every agent but themselves), and ``subscribed``
carries the same ``agents`` list for a page that joins late. Customers neither see nor
send presence.

``/ws/agents/feed/`` (staff): ``snapshot`` on connect (columns new / escalated / SLA at
risk, counts), then ``ticket`` frames as tickets move (the card, and whether it matches
the filter) and ``counts`` frames (the columns' counts under the filter, at most about
once a second after changes); ``filter`` ``{filter: all | mine | unassigned}`` and
``refresh`` answer a new snapshot.

``/ws/chat/`` (customers): the help center's chat, a ticket with channel ``chat``.
``resume`` ``{ticket?, after?}`` follows the customer's current chat session (or the
given one), ``start`` ``{message}`` opens a new one, ``send`` ``{body}`` replies,
``human`` ``{reason?}`` hands it to a person. The AI's answer arrives as
``stream.start`` / ``stream.delta`` / ``stream.end`` frames while it is written, then as
a ``message``.
"""

from __future__ import annotations

import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from django.utils import timezone

from config import metrics
from core import accounts, limits
from core.errors import DomainError
from support import budget, presence, realtime, selectors, services
from support.models import Ticket, TicketChannel

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY_MESSAGES = 4429
#: Messages sent with a subscription when the client gives no ``after``.
HISTORY = 50


class RateLimit:
    """A token bucket: ``burst`` frames at once, refilled at ``per_minute``."""

    def __init__(self, *, per_minute: int, burst: int, clock=time.monotonic):
        self.rate = max(per_minute, 1) / 60.0
        self.capacity = max(burst, 1)
        self.tokens = float(self.capacity)
        self.clock = clock
        self.updated = clock()

    def take(self) -> float:
        """0 when a frame may pass (and it is counted), else seconds until one may."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def metrics_kind(consumer) -> str:
    """``ticket``, ``feed`` or ``chat``: the consumer's label in ``/metrics``."""
    return type(consumer).__name__.removesuffix("Consumer").lower() or "other"


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class LiveConsumer(AsyncWebsocketConsumer):
    """What every endpoint shares: identity, limits, JSON framing, error frames, groups."""

    #: Who may connect: "any" signed-in user, "staff" or "customers".
    audience = "any"

    async def connect(self):
        self.user = self.scope.get("user") or AnonymousUser()
        self.joined: set[str] = set()
        self.closing = False
        self.refused_in_a_row = 0
        self.limit = RateLimit(
            per_minute=settings.HELPDESK_WS_MESSAGES_PER_MINUTE, burst=settings.HELPDESK_WS_BURST
        )
        self.max_bytes = settings.HELPDESK_WS_MAX_MESSAGE_BYTES
        await self.accept()
        self.counted = metrics_kind(self)
        metrics.websocket_opened(self.counted)
        if not self.user.is_authenticated:
            message = self.scope.get("auth_error") or "Sign in to get live updates."
            await self.refuse("unauthenticated", message, close_code=CLOSE_UNAUTHENTICATED)
            return
        self.staff = selectors.is_agent(self.user)
        if self.audience == "staff" and not self.staff:
            await self.refuse(
                "forbidden", "Only support staff can open this.", close_code=CLOSE_FORBIDDEN
            )
            return
        if self.audience == "customers" and self.staff:
            await self.refuse(
                "forbidden",
                "The chat is for customers; staff answer in the agent workspace.",
                close_code=CLOSE_FORBIDDEN,
            )
            return
        await self.send_json(
            {
                "type": "hello",
                "user": {
                    "id": self.user.pk,
                    "name": self.user.get_full_name() or self.user.get_username(),
                    "staff": self.staff,
                },
                "limits": {
                    "max_message_bytes": self.max_bytes,
                    "messages_per_minute": settings.HELPDESK_WS_MESSAGES_PER_MINUTE,
                    "burst": settings.HELPDESK_WS_BURST,
                },
            }
        )
        await self.opened()

    async def opened(self):
        """The connection is accepted and its user may use this endpoint."""

    async def disconnect(self, code):
        self.closing = True
        if getattr(self, "counted", None):
            metrics.websocket_closed(self.counted)
            self.counted = None
        for group in list(getattr(self, "joined", ())):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined = set()

    # ---- frames ----------------------------------------------------------------------------

    async def send_json(self, payload: dict) -> None:
        await self.send(text_data=json.dumps(payload, separators=(",", ":")))

    async def error(self, code: str, message: str, **extra) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, **extra})

    async def refuse(self, code: str, message: str, *, close_code: int) -> None:
        self.closing = True
        await self.error(code, message)
        await self.close(code=close_code)

    async def receive(self, text_data=None, bytes_data=None):
        if self.closing:
            return
        wait = self.limit.take()
        if wait:
            self.refused_in_a_row += 1
            if self.refused_in_a_row > settings.HELPDESK_WS_BURST:
                logger.warning(
                    "WebSocket closed: too many messages",
                    extra={"user_id": self.user.pk, "path": self.scope.get("path")},
                )
                await self.refuse(
                    "rate_limited",
                    "Too many messages; the connection is closed.",
                    close_code=CLOSE_TOO_MANY_MESSAGES,
                )
            else:
                await self.error(
                    "rate_limited",
                    f"Too many messages: wait {wait:.1f} s.",
                    retry_after=round(wait, 1),
                )
            return
        self.refused_in_a_row = 0
        if text_data is None:
            await self.error("bad_frame", "Send JSON text frames.")
            return
        if len(text_data) * 4 > self.max_bytes and len(text_data.encode()) > self.max_bytes:
            await self.error(
                "message_too_large",
                f"A message may be at most {self.max_bytes} bytes.",
                limit=self.max_bytes,
            )
            return
        try:
            content = json.loads(text_data)
            limits.check_json(content)
        except limits.InvalidInput as refusal:
            # A NUL or lone surrogate (PostgreSQL cannot store it), or nesting too deep.
            await self.error("invalid", refusal.message, reason=refusal.code)
            return
        except RecursionError:
            await self.error("invalid", limits.DEPTH_MESSAGE, reason="too_deep")
            return
        except ValueError:
            await self.error("bad_json", "Send a JSON object.")
            return
        action = content.get("action") if isinstance(content, dict) else None
        handler = getattr(self, f"action_{action}", None) if isinstance(action, str) else None
        if handler is None:
            await self.error("unknown_action", f"Unknown action {action!r}.")
            return
        try:
            await handler(content)
        except DomainError as refusal:
            await self.error(refusal.code, refusal.message, action=action)
        except OSError:
            # The client left before the answer went out (uvicorn's ClientDisconnected):
            # nothing failed; its disconnect follows.
            self.closing = True
        except Exception:
            logger.exception("WebSocket action %s failed", action, extra={"user_id": self.user.pk})
            await self.error("server_error", "Something went wrong; try again.", action=action)

    async def too_long(self, field: str, value: str, limit: int, *, action: str) -> bool:
        """Answer ``too_long`` (and say True) when the text ``value`` of ``field`` is longer
        than ``limit`` (``core.limits``), like a field error of the API."""
        if len(value) <= limit:
            return False
        await self.error(
            "too_long", limits.too_long_message(limit), field=field, limit=limit, action=action
        )
        return True

    async def action_ping(self, content):
        await self.send_json({"type": "pong"})

    # ---- groups ----------------------------------------------------------------------------

    async def join(self, group: str) -> None:
        if group not in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.add(group)

    async def leave(self, group: str) -> None:
        if group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
            self.joined.discard(group)

    async def dispatch(self, message):
        # Channels runs close_old_connections() in the database thread before every
        # handler. Forwarding a prepared payload touches no database, and that hop would
        # queue the fan-out to every socket of the process behind one thread.
        if message["type"] == realtime.LIVE_EVENT:
            await self.live_event(message)
        elif message["type"] == realtime.FEED_EVENT and hasattr(self, "feed_ticket"):
            await self.feed_ticket(message)
        elif message["type"] == realtime.FEED_COUNTS and hasattr(self, "feed_counts"):
            await self.feed_counts(message)
        elif message["type"] == presence.PRESENCE_EVENT and hasattr(self, "presence_update"):
            await self.presence_update(message)
        else:
            await super().dispatch(message)

    async def live_event(self, event):
        """A payload from ``support.realtime``, already JSON: forwarded as it is."""
        if self.closing:
            return
        try:
            await self.send(text_data=event["text"])
        except (RuntimeError, OSError):
            # The client left while updates were still queued for it: the server refuses
            # sends after the close; its disconnect follows.
            self.closing = True

    def log_refusal(self, reference) -> None:
        logger.warning(
            "WebSocket subscription refused: %s may not follow %s",
            self.user.get_username(),
            reference,
            extra={"user_id": self.user.pk, "ticket": str(reference)[:40]},
        )


# ======================================================================================
# Database work (synchronous, on Channels' database thread)
# ======================================================================================


def _visible_ticket(user, reference: str) -> Ticket | None:
    try:
        return selectors.ticket_get(user=user, reference=reference)
    except Http404:
        return None


def _conversation(user, ticket: Ticket, *, after: int | None, staff: bool) -> dict:
    messages = selectors.message_list(user=user, ticket=ticket, after=after)
    if after is None:
        messages = list(messages.reverse()[:HISTORY])[::-1]
    ticket = Ticket.objects.select_related("requester", "organization", "assignee", "team").get(
        pk=ticket.pk
    )
    for message in messages:
        message.ticket = ticket
    return {
        "ticket": ticket.reference,
        "state": realtime.ticket_payload(ticket, staff=staff),
        "messages": [realtime.message_payload(m, staff=staff) for m in messages],
    }


@database_sync_to_async
def visible_ticket(user, reference: str) -> Ticket | None:
    return _visible_ticket(user, reference)


@database_sync_to_async
def conversation(user, ticket: Ticket, *, after: int | None, staff: bool) -> dict:
    return _conversation(user, ticket, after=after, staff=staff)


@database_sync_to_async
def feed_snapshot(user, feed_filter: str) -> dict:
    now = timezone.now()
    columns = selectors.feed_tickets(user=user, filter=feed_filter, now=now)
    counts = selectors.feed_counts(now=now)
    return {
        "type": "snapshot",
        "filter": feed_filter,
        "counts": selectors.feed_counts_for(counts, filter=feed_filter, user_id=user.pk),
        "columns": {
            bucket: [realtime.feed_entry(ticket, now) for ticket in tickets]
            for bucket, tickets in columns.items()
        },
        "at_risk_hours": settings.HELPDESK_SLA_AT_RISK_HOURS,
        "at": now.isoformat(),
    }


@database_sync_to_async
def chat_ticket(user, reference: str | None) -> Ticket | None:
    if reference is None:
        return selectors.chat_current(user=user)
    ticket = _visible_ticket(user, reference)
    if ticket is None or ticket.channel != TicketChannel.CHAT or ticket.requester_id != user.pk:
        return None
    return ticket


@database_sync_to_async
def chat_open(user, text: str, address: str | None = None) -> Ticket:
    accounts.require_verified_email(user)  # as on the portal and the API; staff exempt
    budget.ticket_budget_take(user=user, address=address)  # shared with the API and the form
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    subject = first_line if len(first_line) <= 80 else first_line[:79].rstrip() + "…"
    return services.ticket_open(
        requester=user, subject=subject, description=text, channel=TicketChannel.CHAT
    )


@database_sync_to_async
def chat_reply(user, ticket_id: int, body: str):
    ticket = selectors.ticket_list(user=user).get(pk=ticket_id)
    return services.message_add(ticket=ticket, author=user, body=body)


@database_sync_to_async
def chat_hand_over(user, ticket_id: int, reason: str) -> None:
    ticket = selectors.ticket_list(user=user).get(pk=ticket_id)
    services.chat_hand_over(ticket=ticket, actor=user, reason=reason)


# ======================================================================================
# Endpoints
# ======================================================================================


class TicketConsumer(LiveConsumer):
    """``/ws/tickets/``: the conversation pages of the portal and the agent workspace,
    and API clients; one connection may follow several tickets."""

    max_subscriptions = 20

    async def opened(self):
        self.subscriptions: dict[str, str] = {}
        #: Staff only: ticket reference -> {ticket_id, state, since} of this connection.
        self.presence: dict[str, dict] = {}

    async def action_subscribe(self, content):
        reference, after = content.get("ticket"), _int(content.get("after"))
        if not isinstance(reference, str) or not reference.strip():
            await self.error("bad_request", "Say which ticket: {ticket: reference}.")
            return
        if reference not in self.subscriptions and len(self.subscriptions) >= (
            self.max_subscriptions
        ):
            await self.error(
                "too_many_subscriptions",
                f"Follow at most {self.max_subscriptions} tickets per connection.",
            )
            return
        ticket = await visible_ticket(self.user, reference)
        if ticket is None:
            self.log_refusal(reference)
            await self.error(
                "forbidden", "No such ticket, or you may not follow it.", ticket=reference
            )
            return
        group = realtime.ticket_group(ticket.pk, staff=self.staff)
        await self.join(group)  # before reading, so nothing falls between read and join
        self.subscriptions[ticket.reference] = group
        snapshot = await conversation(self.user, ticket, after=after, staff=self.staff)
        if self.staff:
            state = self.presence.get(ticket.reference, {}).get("state", presence.VIEWING)
            snapshot["agents"] = await self.announce(ticket.pk, ticket.reference, state)
        await self.send_json({"type": "subscribed", **snapshot})

    async def action_unsubscribe(self, content):
        reference = content.get("ticket")
        group = self.subscriptions.pop(reference, None) if isinstance(reference, str) else None
        if group is not None:
            await self.withdraw(reference)
            await self.leave(group)
        await self.send_json({"type": "unsubscribed", "ticket": reference})

    async def disconnect(self, code):
        for reference in list(getattr(self, "presence", ())):
            await self.withdraw(reference)
        await super().disconnect(code)

    # ---- presence (staff) ------------------------------------------------------------------

    async def action_presence(self, content):
        if not self.staff:
            await self.error(
                "forbidden", "Only support staff share presence on a ticket.", action="presence"
            )
            return
        reference, state = content.get("ticket"), content.get("state")
        if state not in presence.STATES:
            await self.error(
                "bad_request", "state is one of: viewing, typing, idle.", action="presence"
            )
            return
        if not isinstance(reference, str) or reference not in self.presence:
            await self.error("not_subscribed", "Subscribe to the ticket first.", ticket=reference)
            return
        await self.announce(self.presence[reference]["ticket_id"], reference, state)

    async def announce(self, ticket_id: int, reference: str, state: str) -> list[dict]:
        """Record this connection's state on the ticket; tell the ticket's other staff
        pages when it changed (or when a vanished connection was dropped). Answers the
        other agents here (none while presence is unavailable)."""
        mine = self.presence.get(reference)
        changed = mine is None or mine["state"] != state
        since = presence.now_iso() if changed else mine["since"]
        self.presence[reference] = {"ticket_id": ticket_id, "state": state, "since": since}
        found = await presence.aentry_set(
            ticket_id=ticket_id,
            connection=self.channel_name,
            user=self.user,
            state=state,
            since=since,
        )
        if found is None:
            return []
        entries, dropped = found
        if changed or dropped:
            # This connection knows its own change; a dropped entry is news to it too.
            skip = None if dropped else self.channel_name
            await self.presence_broadcast(ticket_id, reference, entries, skip=skip)
        return presence.agents(entries, exclude_user=self.user.pk)

    async def withdraw(self, reference: str) -> None:
        mine = self.presence.pop(reference, None)
        if mine is None:
            return
        found = await presence.aentry_remove(
            ticket_id=mine["ticket_id"], connection=self.channel_name
        )
        if found is not None:
            await self.presence_broadcast(mine["ticket_id"], reference, found[0])

    async def presence_broadcast(
        self, ticket_id: int, reference: str, entries: list, *, skip: str | None = None
    ) -> None:
        try:
            await self.channel_layer.group_send(
                realtime.ticket_group(ticket_id, staff=True),
                {
                    "type": presence.PRESENCE_EVENT,
                    "ticket": reference,
                    "entries": entries,
                    "skip": skip,
                },
            )
        except Exception:  # the channel layer is away: presence is a convenience
            logger.warning("presence not sent", exc_info=True, extra={"ticket": reference})

    async def presence_update(self, event):
        """The ticket's presence list changed: every agent here but this one."""
        if self.closing or not self.staff or event.get("skip") == self.channel_name:
            return
        try:
            await self.send_json(
                {
                    "type": "presence",
                    "ticket": event["ticket"],
                    "agents": presence.agents(event["entries"], exclude_user=self.user.pk),
                }
            )
        except (RuntimeError, OSError):
            self.closing = True


class FeedConsumer(LiveConsumer):
    """``/ws/agents/feed/``: new, escalated and SLA-at-risk tickets as they happen."""

    audience = "staff"

    async def opened(self):
        query = self.scope.get("query_string", b"").decode("latin1")
        requested = dict(part.partition("=")[::2] for part in query.split("&") if part)
        self.filter = requested.get("filter", "all")
        if self.filter not in selectors.FEED_FILTERS:
            self.filter = "all"
        await self.join(realtime.FEED_GROUP)
        await self.send_json(await feed_snapshot(self.user, self.filter))

    async def action_filter(self, content):
        value = content.get("filter")
        if value not in selectors.FEED_FILTERS:
            await self.error("bad_request", "filter is one of: all, mine, unassigned.")
            return
        self.filter = value
        await self.send_json(await feed_snapshot(self.user, self.filter))

    async def action_refresh(self, content):
        await self.send_json(await feed_snapshot(self.user, self.filter))

    async def feed_ticket(self, event):
        """One ticket changed: its card, and whether it belongs under this agent's
        filter. The counts follow in their own frame (:meth:`feed_counts`)."""
        if self.closing:
            return
        ticket = event["ticket"]
        await self.send_json(
            {
                "type": "ticket",
                "change": event["change"],
                "ticket": ticket,
                "matches": selectors.feed_matches(
                    filter=self.filter, assignee_id=ticket["assignee_id"], user_id=self.user.pk
                ),
            }
        )

    async def feed_counts(self, event):
        """The columns' counts under this agent's filter (every filter's come with the
        event), sent at most about once a second after changes."""
        if self.closing:
            return
        await self.send_json(
            {
                "type": "counts",
                "filter": self.filter,
                "counts": selectors.feed_counts_for(
                    event["counts"], filter=self.filter, user_id=self.user.pk
                ),
            }
        )


class ChatConsumer(LiveConsumer):
    """``/ws/chat/``: the help center's live chat with the AI agent (and then people)."""

    audience = "customers"

    async def opened(self):
        self.ticket: Ticket | None = None
        self.group: str | None = None

    async def follow(self, ticket: Ticket | None, *, after: int | None) -> None:
        new_group = realtime.ticket_group(ticket.pk, staff=False) if ticket else None
        if self.group and self.group != new_group:
            await self.leave(self.group)
        self.ticket, self.group = ticket, new_group
        if ticket is None:
            await self.send_json({"type": "chat", "ticket": None, "state": None, "messages": []})
            return
        await self.join(new_group)
        snapshot = await conversation(self.user, ticket, after=after, staff=False)
        await self.send_json({"type": "chat", **snapshot})

    async def action_resume(self, content):
        reference = content.get("ticket")
        if reference is not None and not isinstance(reference, str):
            await self.error("bad_request", "ticket is a reference.")
            return
        ticket = await chat_ticket(self.user, reference or None)
        if reference and ticket is None:
            self.log_refusal(reference)
            await self.error("forbidden", "No such chat, or it is not yours.", ticket=reference)
            return
        await self.follow(ticket, after=_int(content.get("after")))

    async def action_start(self, content):
        text = content.get("message")
        if not isinstance(text, str) or not text.strip():
            await self.error("bad_request", "Write your question: {message: text}.")
            return
        if await self.too_long("message", text, limits.TICKET_DESCRIPTION, action="start"):
            return
        try:
            ticket = await chat_open(self.user, text, budget.scope_client_address(self.scope))
        except accounts.EmailUnverified as unverified:
            await self.error(unverified.code, unverified.message, action="start")
            return
        except budget.TicketBudgetSpent as spent:
            await self.error(
                spent.code, spent.message, action="start", retry_after=spent.retry_after
            )
            return
        await self.follow(ticket, after=None)

    async def action_send(self, content):
        body = content.get("body")
        if self.ticket is None:
            await self.error("no_chat", "Start a chat first.")
            return
        if not isinstance(body, str) or not body.strip():
            await self.error("bad_request", "Write a message: {body: text}.")
            return
        if await self.too_long("body", body, limits.MESSAGE_BODY, action="send"):
            return
        message = await chat_reply(self.user, self.ticket.pk, body)
        await self.send_json({"type": "sent", "id": message.pk, "ref": content.get("ref")})

    async def action_human(self, content):
        if self.ticket is None:
            await self.error("no_chat", "Start a chat first.")
            return
        reason = content.get("reason") if isinstance(content.get("reason"), str) else ""
        if await self.too_long("reason", reason, limits.REASON, action="human"):
            return
        await chat_hand_over(self.user, self.ticket.pk, reason.strip())
        await self.send_json({"type": "handed_over", "ticket": self.ticket.reference})
