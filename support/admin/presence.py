"""presence: who else has the ticket open, and the reply form's collision guard.

The ticket page's context (``tickets.TICKET_PAGE_CONTEXT``): ``seen_message_id``, the
newest message the page shows when it is rendered (the reply form sends it back, and
``tickets._reply`` refuses a reply written before a newer message unless the agent
confirms); ``reply_draft``, a reply that was refused and kept for the reply box; and the
presence heartbeat for static/js/live.js, which lists the other agents here ("Also
here: Ana (viewing), Ben (typing…)") from the ticket socket (``support.presence``).
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Max

from support import presence, selectors
from support.admin.tickets import TICKET_PAGE_CONTEXT

#: How often the page repeats its state (seconds): well inside the presence TTL.
HEARTBEAT_SECONDS = 15


def presence_context(ticket, request) -> dict:
    newest = selectors.message_list(user=request.user, ticket=ticket).aggregate(newest=Max("pk"))
    ttl = settings.HELPDESK_PRESENCE_TTL_SECONDS
    return {
        "seen_message_id": newest["newest"] or 0,
        "reply_draft": presence.draft_take(request, ticket=ticket),
        "presence_heartbeat": max(1, min(HEARTBEAT_SECONDS, ttl // 3)),
    }


TICKET_PAGE_CONTEXT.append(presence_context)
