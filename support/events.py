"""One small writer per ticket event type (the audit log). Services call them inside
their transaction, so an event exists exactly when its change does."""

from __future__ import annotations

import contextvars
import threading

from core.roles import is_agent
from support.models import Message, Ticket, TicketEvent

Kind = TicketEvent.Kind


def actor_kind_of(user) -> str:
    if user is None:
        return TicketEvent.ActorKind.SYSTEM
    return TicketEvent.ActorKind.AGENT if is_agent(user) else TicketEvent.ActorKind.CUSTOMER


# How many events this thread has written: a service compares it before and after
# announcing its change to know whether a rule changed the ticket meanwhile.
_count = threading.local()


def written() -> int:
    """Events written by this thread so far (only differences mean anything)."""
    return getattr(_count, "value", 0)


# The events written and not yet announced, by ticket id: support.side_effects announces
# them as ``ticket_activity`` (core.events) at the end of the service that wrote them.
_unannounced: contextvars.ContextVar[dict[int, list[TicketEvent]] | None] = contextvars.ContextVar(
    "unannounced_ticket_events", default=None
)


def take_unannounced(ticket_id: int) -> list[TicketEvent]:
    """The events written for ``ticket_id`` since the last call, oldest first."""
    pending = _unannounced.get()
    if not pending:
        return []
    return pending.pop(ticket_id, [])


def _write(
    *,
    ticket: Ticket,
    kind: str,
    actor,
    actor_kind: str | None = None,
    field: str = "",
    old: str = "",
    new: str = "",
    metadata: dict | None = None,
    is_internal: bool = False,
) -> TicketEvent:
    event = TicketEvent.objects.create(
        ticket=ticket,
        kind=kind,
        actor=actor,
        actor_kind=actor_kind or actor_kind_of(actor),
        field=field,
        old_value=str(old or "")[:200],
        new_value=str(new or "")[:200],
        metadata=metadata or {},
        is_internal=is_internal,
    )
    _count.value = written() + 1
    pending = _unannounced.get()
    if pending is None:
        pending = {}
        _unannounced.set(pending)
    pending.setdefault(ticket.pk, []).append(event)
    return event


def ticket_created_event(*, ticket: Ticket, actor, actor_kind=None) -> TicketEvent:
    return _write(
        ticket=ticket,
        kind=Kind.CREATED,
        actor=actor,
        actor_kind=actor_kind,
        new=ticket.reference,
        metadata={"channel": ticket.channel, "type": ticket.type, "priority": ticket.priority},
    )


def status_changed_event(
    *, ticket: Ticket, actor, old: str, new: str, actor_kind=None, metadata: dict | None = None
) -> TicketEvent:
    return _write(
        ticket=ticket,
        kind=Kind.STATUS_CHANGED,
        actor=actor,
        actor_kind=actor_kind,
        field="status",
        old=old,
        new=new,
        metadata=metadata,
    )


def assigned_event(
    *, ticket: Ticket, actor, old_assignee, new_assignee, actor_kind=None
) -> TicketEvent:
    return _write(
        ticket=ticket,
        kind=Kind.ASSIGNED,
        actor=actor,
        actor_kind=actor_kind,
        field="assignee",
        old=old_assignee.get_username() if old_assignee else "",
        new=new_assignee.get_username() if new_assignee else "",
        metadata={
            "old_id": getattr(old_assignee, "pk", None),
            "new_id": getattr(new_assignee, "pk", None),
        },
    )


def priority_changed_event(
    *, ticket: Ticket, actor, old: str, new: str, actor_kind=None
) -> TicketEvent:
    return _write(
        ticket=ticket,
        kind=Kind.PRIORITY_CHANGED,
        actor=actor,
        actor_kind=actor_kind,
        field="priority",
        old=old,
        new=new,
    )


def field_changed_event(
    *, ticket: Ticket, actor, field: str, old, new, actor_kind=None
) -> TicketEvent:
    return _write(
        ticket=ticket,
        kind=Kind.FIELD_CHANGED,
        actor=actor,
        actor_kind=actor_kind,
        field=field,
        old=old,
        new=new,
    )


def custom_field_changed_event(
    *, ticket: Ticket, actor, key: str, old: str, new: str, visible: bool, actor_kind=None
) -> TicketEvent:
    """A custom field's value changed (``field`` is its key; values as people read them);
    internal unless the field is shown to customers."""
    return _write(
        ticket=ticket,
        kind=Kind.FIELD_CHANGED,
        actor=actor,
        actor_kind=actor_kind,
        field=key[:50],
        old=old,
        new=new,
        metadata={"custom_field": key},
        is_internal=not visible,
    )


def escalated_event(*, ticket: Ticket, actor, escalation, actor_kind=None) -> TicketEvent:
    return _write(
        ticket=ticket,
        kind=Kind.ESCALATED,
        actor=actor,
        actor_kind=actor_kind,
        new=escalation.team.name if escalation.team else "",
        metadata={
            "escalation_id": escalation.pk,
            "kind": escalation.kind,
            "reason": escalation.reason[:500],
            "team_id": escalation.team_id,
            "assignee_id": escalation.assignee_id,
        },
    )


def resolved_event(*, ticket: Ticket, actor, actor_kind=None) -> TicketEvent:
    return _write(ticket=ticket, kind=Kind.RESOLVED, actor=actor, actor_kind=actor_kind)


def closed_event(*, ticket: Ticket, actor, actor_kind=None) -> TicketEvent:
    return _write(ticket=ticket, kind=Kind.CLOSED, actor=actor, actor_kind=actor_kind)


def reopened_event(*, ticket: Ticket, actor, reason: str, actor_kind=None) -> TicketEvent:
    return _write(
        ticket=ticket,
        kind=Kind.REOPENED,
        actor=actor,
        actor_kind=actor_kind,
        metadata={"reason": reason},
    )


def message_added_event(*, ticket: Ticket, message: Message) -> TicketEvent:
    return _write(
        ticket=ticket,
        kind=Kind.MESSAGE_ADDED,
        actor=message.author,
        actor_kind=message.sender_kind if message.sender_kind != "system" else "system",
        metadata={"message_id": message.pk, "sender_kind": message.sender_kind},
        is_internal=message.is_internal,
    )


def rated_event(*, ticket: Ticket, actor, rating: int) -> TicketEvent:
    return _write(
        ticket=ticket, kind=Kind.RATED, actor=actor, field="satisfaction_rating", new=str(rating)
    )


def github_event(*, ticket: Ticket, kind: str, actor=None, metadata: dict | None = None):
    """A step of the ticket's GitHub automation (team-only: links to code and reviews)."""
    return _write(
        ticket=ticket,
        kind=kind,
        actor=actor,
        actor_kind=None if actor else TicketEvent.ActorKind.SYSTEM,
        metadata=metadata,
        is_internal=True,
    )


def notification_failed_event(*, ticket: Ticket, effect: str, error: str, attempts: int):
    """An email about the ticket could not be sent after every retry (team-only)."""
    return _write(
        ticket=ticket,
        kind=Kind.NOTIFICATION_FAILED,
        actor=None,
        new=effect,
        metadata={"effect": effect, "error": error[:1000], "attempts": attempts},
        is_internal=True,
    )


def tags_changed_event(
    *, ticket: Ticket, actor, old: list[str], new: list[str], actor_kind=None
) -> TicketEvent:
    """The ticket's tags changed (team-only: customers do not see tags)."""
    return _write(
        ticket=ticket,
        kind=Kind.TAGS_CHANGED,
        actor=actor,
        actor_kind=actor_kind,
        field="tags",
        old=", ".join(old),
        new=", ".join(new),
        metadata={
            "added": sorted(set(new) - set(old)),
            "removed": sorted(set(old) - set(new)),
        },
        is_internal=True,
    )


def rule_applied_event(
    *, ticket: Ticket, rule_id: int, rule_name: str, action: str, detail: str = ""
) -> TicketEvent:
    """An automation rule did something to the ticket (one event per action)."""
    return _write(
        ticket=ticket,
        kind=Kind.RULE_APPLIED,
        actor=None,
        actor_kind=TicketEvent.ActorKind.SYSTEM,
        field="rule",
        new=rule_name,
        metadata={"rule_id": rule_id, "rule": rule_name, "action": action, "detail": detail},
        is_internal=True,
    )


def linked_event(
    *,
    ticket: Ticket,
    kind: str,
    actor,
    other: Ticket,
    role: str,
    message_ids: list[int],
    metadata: dict | None = None,
) -> TicketEvent:
    """A merge or a split between ``ticket`` and ``other``: ``merged`` on the survivor
    (``role`` "duplicate"), ``merged_into`` on the duplicate ("survivor"), ``split`` on
    the original ("new_ticket"), ``split_from`` on the new ticket ("original"). The other
    ticket's reference is the new value (the log reads "merged into HD-…"); the metadata
    names it and its id under ``role``, with the messages moved."""
    return _write(
        ticket=ticket,
        kind=kind,
        actor=actor,
        new=other.reference,
        metadata={
            role: other.reference,
            f"{role}_id": other.pk,
            "message_ids": message_ids,
            **(metadata or {}),
        },
    )


def action_run_event(
    *,
    run,
    kind: str,
    actor=None,
    actor_kind=None,
    is_internal: bool = False,
    metadata: dict | None = None,
) -> TicketEvent:
    """A step of an HTTP action on the ticket (``support.services.actions``): requested,
    confirmed, declined, approved, rejected, done or failed. The action's title is the
    new value; the run, the action's name and its status are in the metadata."""
    return _write(
        ticket=run.ticket,
        kind=kind,
        actor=actor,
        actor_kind=actor_kind,
        new=run.action.title,
        metadata={
            "run_id": run.pk,
            "action": run.action.name,
            "status": run.status,
            **(metadata or {}),
        },
        is_internal=is_internal,
    )
