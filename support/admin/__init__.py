"""The agent workspace in Django admin, one module per area; importing them registers
their ModelAdmins.

- ``tickets``: the ticket queue, the ticket page with its buttons, the live feed;
- ``escalations``: escalations and the event log (read-only);
- ``organizations``: organizations and their people, teams and members;
- ``sla``: business calendars (hours, holidays) and SLA policies with their targets;
- ``replies``: saved replies;
- ``training``: the training examples' review queue;
- ``email``: support addresses, mail domains, inbound mail (spam queue), participants;
- ``mailboxes``: the IMAP mailboxes read by beat (poll now, test the connection);
- ``actions``: HTTP actions the AI may call (managers define them) and their runs
  (approve or reject those the customer confirmed);
- the agent workspace's areas of the ticket page, each adding its buttons to
  ``tickets.TICKET_ACTIONS`` and its context to ``tickets.TICKET_PAGE_CONTEXT``:
  ``tags`` (tags and the curated list), ``custom_fields`` (definitions and values),
  ``merge`` (merge duplicates, split messages off), ``presence`` (who else is here),
  ``copilot`` (summarize, suggest, rewrite, translate), ``traces`` ("Why did the AI do
  this?": the AI's decision traces); ``bulk``: the queue's bulk actions with their
  summary.

Every change calls a service of ``support.services``; no door here writes a model
itself. Staff (agents) work here without per-model permissions, managers also set up
organizations, teams and SLA policies; only superusers may delete, and nobody may change
the event log.
"""

from support.admin import (
    actions,
    bulk,
    copilot,
    custom_fields,
    email,
    escalations,
    mailboxes,
    merge,
    organizations,
    presence,
    replies,
    sla,
    tags,
    tickets,
    traces,
    training,
)

__all__ = [
    "actions",
    "bulk",
    "copilot",
    "custom_fields",
    "email",
    "escalations",
    "mailboxes",
    "merge",
    "organizations",
    "presence",
    "replies",
    "sla",
    "tags",
    "tickets",
    "traces",
    "training",
]
