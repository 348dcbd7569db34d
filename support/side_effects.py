"""The one way services schedule work outside the transaction: after it commits.

``after_commit(kind, **ids)`` runs, once the transaction has committed:

1. the live update (:func:`support.realtime.publish`): the ticket's pages, the chat
   widget and the agents' live feed hear of the change over WebSocket;
2. :func:`support.tasks.ticket_effects` (and, for new tickets and customer replies,
   :func:`support.tasks.analyze_ticket`; for ratings,
   :func:`support.tasks.harvest_training_example`), queued with ids only.

Kinds in :data:`LIVE_ONLY` (internal notes and system messages, status, priority and
assignment changes nobody is emailed about) only update live pages.

So a rolled-back change sends and queues nothing, and a worker always reads committed
rows. If Redis or the broker is down at that moment the change is already safe in the
database; the failure is logged with the ids, pages catch up when they reconnect, the
ticket stays visible in the queues for people, and ``sweep_stuck_tickets`` queues the
analysis of new tickets that waited too long.
"""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def after_commit(kind: str, **ids) -> None:
    transaction.on_commit(lambda: _dispatch(kind, ids))


#: Changes after which the AI agent looks at the ticket (it acts only on "new" tickets).
ANALYZED_AFTER = {"ticket_opened", "customer_replied"}
#: Changes after which a ticket may become a training example (rated 4 or 5).
HARVESTED_AFTER = {"rated"}
#: Changes that only update live pages: no email, no task.
LIVE_ONLY = {"message_added", "ticket_changed"}


def _dispatch(kind: str, ids: dict) -> None:
    from support import realtime
    from support.tasks import analyze_ticket, harvest_training_example, ticket_effects

    try:
        realtime.publish(kind, ids)
    except Exception:  # a live update must not keep the tasks from being queued
        logger.exception("could not publish %s", kind, extra={"effect": kind, **ids})
    if kind in LIVE_ONLY:
        return
    try:
        ticket_effects.delay(kind, **ids)
        if kind in ANALYZED_AFTER:
            analyze_ticket.delay(ids["ticket_id"])
        if kind in HARVESTED_AFTER:
            harvest_training_example.delay(ids["ticket_id"])
    except Exception:  # the broker being down must not fail a committed request
        logger.exception("could not queue %s effects", kind, extra={"effect": kind, **ids})
