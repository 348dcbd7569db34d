"""What bugfix does when support announces a domain event (subscribed in ``apps.py``).

Handlers run in the announcer's transaction (``core.events``): what they write, and the
work they schedule through the outbox, commits or rolls back with the change.
"""

from __future__ import annotations

from bugfix import services
from support.models import Ticket


def ticket_bug_confirmed(*, ticket_id: int) -> None:
    """Triage confirmed a bug: send it to GitHub (issue, then maybe a draft fix), when
    GitHub is configured for the ticket; otherwise nothing happens."""
    ticket = Ticket.objects.select_related("organization").get(pk=ticket_id)
    if services.github_enabled_for(ticket):
        services.github_link_request(ticket=ticket)
