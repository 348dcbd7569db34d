"""The one way services schedule work outside the transaction.

``after_commit(kind, **ids)``, called inside the service's transaction:

1. records the follow-up tasks in the outbox (:func:`core.outbox.schedule_after_commit`),
   in the same transaction: :func:`support.tasks.ticket_effects` for the changes somebody
   is emailed about (:data:`EMAILED_AFTER`), and for new
   tickets and customer replies :func:`support.tasks.analyze_ticket`, for ratings
   :func:`support.tasks.harvest_training_example`; ids only. They are handed to Celery
   once the transaction commits, and re-sent by the relay until a worker finishes them,
   so a broker outage or a killed worker loses nothing;
2. once the transaction has committed, hands the live update to this process's publisher
   (:func:`support.realtime.announce`, which only queues it): the ticket's pages, the chat
   widget and the agents' live feed hear of the change over WebSocket a moment later,
   built and sent off the request thread. That one is best effort: a Redis failure is
   logged, and pages catch up when they reconnect.

Kinds in :data:`LIVE_ONLY` (internal notes and system messages, status, priority and
assignment changes nobody is emailed about) only update live pages.

So a rolled-back change sends and queues nothing, and a worker always reads committed rows.
"""

from __future__ import annotations

import logging

from django.db import transaction

from core import events
from core.outbox import schedule_after_commit

logger = logging.getLogger(__name__)


def after_commit(kind: str, **ids) -> None:
    from support.events import take_unannounced

    # Rules and outbound webhooks (automation) hear of the change while its transaction
    # is still open: what they do commits, or rolls back, with it.
    events.announce(
        "ticket_activity",
        ticket_id=ids["ticket_id"],
        kind=kind,
        events=take_unannounced(ids["ticket_id"]),
    )
    if kind in EMAILED_AFTER:
        schedule_after_commit("support.tasks.ticket_effects", kind, **ids)
    if kind in ANALYZED_AFTER:
        schedule_after_commit("support.tasks.analyze_ticket", ids["ticket_id"])
    if kind in HARVESTED_AFTER:
        schedule_after_commit("support.tasks.harvest_training_example", ids["ticket_id"])
    transaction.on_commit(lambda: _publish(kind, ids))


#: Changes somebody is emailed about (support.notifications).
EMAILED_AFTER = {"public_reply", "resolved", "escalated", "assigned", "customer_replied"}
#: Changes after which the AI agent looks at the ticket (it acts only on "new" tickets).
ANALYZED_AFTER = {"ticket_opened", "customer_replied"}
#: Changes after which a ticket may become a training example (rated 4 or 5).
HARVESTED_AFTER = {"rated"}
#: Changes that only update live pages: no email, no task.
LIVE_ONLY = {"message_added", "ticket_changed"}


def _publish(kind: str, ids: dict) -> None:
    from support import realtime

    try:
        realtime.announce(kind, ids)
    except Exception:  # a live update never fails a committed change
        logger.exception("could not publish %s", kind, extra={"effect": kind, **ids})
