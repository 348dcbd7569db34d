"""A small in-process registry of domain events, so that an app can react to another's
changes without being imported by it (support announces, feedback and bugfix listen).

An app subscribes in its ``AppConfig.ready``::

    events.subscribe("organization_revenue_changed", reweigh_votes)

and the owning service announces inside its transaction::

    events.announce("organization_revenue_changed", organization_id=org.pk)

Handlers run synchronously, in the announcer's transaction: they write their own rows or
schedule work through :func:`core.outbox.schedule_after_commit`, so a rollback undoes
both. A handler's error propagates (the change is refused as a whole).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

_handlers: dict[str, list[Callable[..., None]]] = defaultdict(list)

# The events announced today, each with its keyword arguments.
KNOWN = {
    "organization_revenue_changed": "organization_id",
    "ticket_bug_confirmed": "ticket_id (triage confirmed a bug ticket)",
    # After each change to a ticket, at the end of the service that made it (still in its
    # transaction): kind is support's change kind (ticket_opened, customer_replied,
    # public_reply, message_added, ticket_changed, assigned, escalated, resolved, rated),
    # events the audit-log rows (support.models.TicketEvent) written since the last
    # announcement for this ticket. Automation's rules and outbound webhooks listen.
    "ticket_activity": "ticket_id, kind, events",
    "feature_request_status_changed": "feature_request_id, old, new",
}


def subscribe(name: str, handler: Callable[..., None]) -> None:
    if name not in KNOWN:
        raise ValueError(f"Unknown domain event {name!r}; add it to core.events.KNOWN.")
    if handler not in _handlers[name]:
        _handlers[name].append(handler)


def announce(name: str, **payload) -> None:
    if name not in KNOWN:
        raise ValueError(f"Unknown domain event {name!r}; add it to core.events.KNOWN.")
    for handler in list(_handlers[name]):
        handler(**payload)
