"""The one way services schedule work outside the transaction: after it commits.

``after_commit(kind, **ids)`` queues :func:`support.tasks.ticket_effects` (and, for new
tickets and customer replies, :func:`support.tasks.analyze_ticket`; for ratings,
:func:`support.tasks.harvest_training_example`) with ids only,
so a rolled-back change sends nothing and a worker always reads committed rows. If the
broker is down at that moment the change is already safe in the database; the failure is
logged with the ids, the ticket stays visible in the queues for people, and
``sweep_stuck_tickets`` queues the analysis of new tickets that waited too long.
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


def _dispatch(kind: str, ids: dict) -> None:
    from support.tasks import analyze_ticket, harvest_training_example, ticket_effects

    try:
        ticket_effects.delay(kind, **ids)
        if kind in ANALYZED_AFTER:
            analyze_ticket.delay(ids["ticket_id"])
        if kind in HARVESTED_AFTER:
            harvest_training_example.delay(ids["ticket_id"])
    except Exception:  # the broker being down must not fail a committed request
        logger.exception("could not queue %s effects", kind, extra={"effect": kind, **ids})
