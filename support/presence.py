"""Who else has a ticket open in the agent workspace, and what arrived since they opened it.

Presence. Every staff connection of ``/ws/tickets/`` subscribed to a ticket keeps one
entry in a Redis hash per ticket (``helpdesk:presence:<ticket id>`` in the cache's
database): the field is the connection's channel name, the value who it is, its state
(``viewing``, ``typing``, ``idle``), since when, and when it last said so. One entry per
connection, so an agent with two tabs stays "here" until both are closed, and Redis, not
a web process, holds the list, so agents served by different processes see each other.
The page repeats its state every ~15 s; an entry older than
``HELPDESK_PRESENCE_TTL_SECONDS`` belongs to a connection that vanished without saying
goodbye and is dropped when the hash is next read (the hash itself expires when all of
them go quiet). Presence is a convenience: while Redis is away the functions here answer
``None``, the socket and the page go on without it, and the outage is logged once.

Collision. The agent's reply form carries ``seen_message_id``, the newest message of the
conversation the agent had when they started. :func:`newer_message` finds a public
message written since by someone else (the customer, another agent, the AI); the ticket
page then refuses to send without ``confirm_send`` and keeps the draft in the session
(:func:`draft_keep`, :func:`draft_take`) so the agent reads first and loses nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone
from redis.backoff import NoBackoff
from redis.retry import Retry

from config.redis_sentinel import redis_client
from core.errors import Conflict, DomainError
from support.models import Message, Ticket

logger = logging.getLogger(__name__)

VIEWING, TYPING, IDLE = "viewing", "typing", "idle"
STATES = (VIEWING, TYPING, IDLE)
#: Several connections of one agent: the most active one says what the agent is doing.
_RANK = {TYPING: 3, VIEWING: 2, IDLE: 1}
#: The channel-layer message the staff group of a ticket receives when its list changes
#: (``support.consumers.TicketConsumer.presence_update`` shapes it per agent).
PRESENCE_EVENT = "presence.update"
#: After a Redis failure, presence is not tried again for this many seconds.
RETRY_AFTER = 5.0

_lock = threading.Lock()
_client: redis.Redis | None = None
_down_until = float("-inf")
_outage_logged = False


def _redis() -> redis.Redis:
    global _client
    with _lock:
        if _client is None:
            # One quick retry (a pooled connection Redis closed), no backoff: a socket
            # waits at most about a second for presence while Redis is away.
            _client = redis_client(
                settings.CACHE_URL,
                socket_connect_timeout=0.5,
                socket_timeout=0.5,
                retry=Retry(NoBackoff(), 1),
            )
        return _client


def _key(ticket_id: int) -> str:
    return f"helpdesk:presence:{ticket_id}"


def _failed(error: Exception) -> None:
    global _down_until, _outage_logged
    with _lock:
        _down_until = time.monotonic() + RETRY_AFTER
        first = not _outage_logged
        _outage_logged = True
    if first:
        logger.warning(
            "presence is unavailable: Redis cannot be reached (%s: %s)",
            type(error).__name__,
            error,
        )


def _recovered() -> None:
    global _outage_logged
    if _outage_logged:
        _outage_logged = False
        logger.info("presence is available again")


def _entries(raw: dict, *, now: float) -> tuple[list[dict], list[bytes]]:
    """The live entries of a hash (oldest first) and the fields of the stale ones."""
    ttl = settings.HELPDESK_PRESENCE_TTL_SECONDS
    live, stale = [], []
    for field, value in raw.items():
        try:
            entry = json.loads(value)
            fresh = now - float(entry["at"]) <= ttl
        except (ValueError, KeyError, TypeError):
            fresh = False
        if fresh:
            live.append(
                {key: entry[key] for key in ("user", "name", "state", "since") if key in entry}
            )
        else:
            stale.append(field)
    live.sort(key=lambda entry: entry.get("since", ""))
    return live, stale


def _run(ticket_id: int, write) -> tuple[list[dict], bool] | None:
    """``write`` the hash of the ticket in one round trip with reading it back; drop the
    stale entries. Says (entries, whether any were dropped), or None while Redis is away."""
    if time.monotonic() < _down_until:
        return None
    key = _key(ticket_id)
    try:
        pipe = _redis().pipeline(transaction=True)
        write(pipe, key)
        pipe.hgetall(key)
        raw = pipe.execute()[-1]
        entries, stale = _entries(raw, now=time.time())
        if stale:
            _redis().hdel(key, *stale)
    except (redis.RedisError, OSError) as error:
        _failed(error)
        return None
    _recovered()
    return entries, bool(stale)


def entry_set(
    *, ticket_id: int, connection: str, user, state: str, since: str
) -> tuple[list[dict], bool] | None:
    """Record (or refresh) one connection's state on a ticket; answer the ticket's list."""
    value = json.dumps(
        {
            "user": user.pk,
            "name": user.get_full_name() or user.get_username(),
            "state": state,
            "since": since,
            "at": time.time(),
        }
    )
    ttl = settings.HELPDESK_PRESENCE_TTL_SECONDS

    def write(pipe, key):
        pipe.hset(key, connection, value)
        pipe.expire(key, ttl + 5)

    return _run(ticket_id, write)


def entry_remove(*, ticket_id: int, connection: str) -> tuple[list[dict], bool] | None:
    """One connection left the ticket; answer the list without it."""
    return _run(ticket_id, lambda pipe, key: pipe.hdel(key, connection))


def entry_list(*, ticket_id: int) -> list[dict] | None:
    found = _run(ticket_id, lambda pipe, key: None)
    return None if found is None else found[0]


aentry_set = sync_to_async(entry_set, thread_sensitive=False)
aentry_remove = sync_to_async(entry_remove, thread_sensitive=False)


def agents(entries: list[dict], *, exclude_user: int | None = None) -> list[dict]:
    """The entries as the page lists them: one per agent (their most active connection),
    ``{id, name, state, since}``, in the order they arrived, without ``exclude_user``."""
    chosen: dict[int, dict] = {}
    for entry in entries:
        user = entry.get("user")
        if user is None or user == exclude_user or entry.get("state") not in _RANK:
            continue
        current = chosen.get(user)
        if current is None or _RANK[entry["state"]] > _RANK[current["state"]]:
            chosen[user] = {
                "id": user,
                "name": entry.get("name", ""),
                "state": entry["state"],
                "since": entry.get("since", ""),
            }
    return list(chosen.values())


def now_iso() -> str:
    return timezone.now().isoformat()


# ======================================================================================
# Collision: a reply written while a new message arrived
# ======================================================================================

#: The largest message id (a PostgreSQL bigint).
MAX_ID = 2**63 - 1
STALE_REPLY = "A new message arrived after you opened the ticket — read it, then send again."


def parse_seen(value) -> int | None:
    """``seen_message_id`` as the form or the API sends it; None when it is not given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seen = int(value)
    except (TypeError, ValueError):
        seen = -1
    if not 0 <= seen <= MAX_ID:
        raise DomainError(
            "Not a message id: reload the ticket and send again.", field="seen_message_id"
        )
    return seen


def newer_message(*, ticket: Ticket, agent, seen_message_id: int) -> Message | None:
    """The newest public message written after ``seen_message_id`` by anyone but
    ``agent`` (the customer, another agent, the AI, the helpdesk), if there is one."""
    return (
        ticket.messages.filter(pk__gt=seen_message_id, is_internal=False)
        .exclude(author=agent)
        .select_related("author")
        .order_by("-pk")
        .first()
    )


def reply_check(*, ticket: Ticket, agent, seen_message_id, confirmed: bool) -> None:
    """Refuse a reply to the customer that was written before a message it has not seen,
    unless the agent confirmed sending it anyway."""
    seen = parse_seen(seen_message_id)
    if seen is None or confirmed:
        return
    if newer_message(ticket=ticket, agent=agent, seen_message_id=seen) is not None:
        raise Conflict(STALE_REPLY, code="stale_reply")


def _draft_key(ticket_id: int) -> str:
    return f"helpdesk.reply_draft.{ticket_id}"


def draft_keep(request, *, ticket: Ticket, body: str, internal: bool, resolve: bool) -> None:
    """Keep a reply that was not sent, for the ticket page to put back in the reply box."""
    if body.strip():
        request.session[_draft_key(ticket.pk)] = {
            "body": body,
            "is_internal": internal,
            "and_resolve": resolve,
        }


def draft_take(request, *, ticket: Ticket) -> dict | None:
    """The kept draft of this ticket (once: the page that shows it owns it again)."""
    session = getattr(request, "session", None)
    if session is None:
        return None
    return session.pop(_draft_key(ticket.pk), None)
