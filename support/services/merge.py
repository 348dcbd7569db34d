"""Merging a duplicate into the ticket that stays, and splitting messages off into a
new ticket (the agent workspace).

Merge (:func:`ticket_merge`): the duplicate's messages (their attachments with them),
participants and tags move to the survivor; the duplicate is closed through the status
table, points to its survivor (``merged_into``) and keeps its own events; both tickets
get an event. The customer is told once: a public notice on the survivor, mailed like any
public reply (the duplicate's requester and participants are copied from then on), and no
"closed" mail for the duplicate. A customer's later reply to the duplicate (portal, API,
email) goes on to the survivor (``services.tickets.message_add``).

Split (:func:`ticket_split`): chosen messages move to a new ticket of the same customer,
linked to the first (``split_from``), assigned to the agent who split it and not sent to
the AI. Messages that move keep where they were written (``Message.moved_from``).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from core.errors import Conflict, DomainError, NotPermitted
from core.roles import is_agent
from support import events
from support.models import (
    Message,
    Ticket,
    TicketEvent,
    TicketParticipant,
    TicketStatus,
    TicketTag,
)
from support.services.tickets import (
    _lock,
    _reference_for,
    _settle,
    _sla_start,
    survivor_id,
)
from support.side_effects import after_commit

__all__ = ["survivor_id", "ticket_merge", "ticket_split"]

S = TicketStatus
SenderKind = Message.SenderKind
Kind = TicketEvent.Kind

#: The AI is writing on a ticket in these statuses: merging or splitting under it would
#: move messages it is reading (its answer would land on the wrong ticket).
AI_BUSY = frozenset({S.ANALYZING, S.AI_RESPONDING})


def _refuse_if_ai_busy(*tickets: Ticket) -> None:
    for ticket in tickets:
        if ticket.status in AI_BUSY:
            raise Conflict(
                f"The AI is answering {ticket.reference} right now; try again in a minute.",
                code="ai_busy",
            )


def _reference(ticket_id: int) -> str:
    return Ticket.objects.filter(pk=ticket_id).values_list("reference", flat=True).first() or "?"


def merge_notice(*, duplicate: Ticket, survivor: Ticket) -> str:
    """The one message the customer gets about a merge (on the survivor)."""
    return (
        f"Your request {duplicate.reference} ({duplicate.subject}) was merged into this one, "
        f"{survivor.reference}, because it is about the same thing. Its messages are now "
        "here, and we will continue the conversation here: reply to this ticket."
    )


@transaction.atomic
def ticket_merge(*, ticket: Ticket, into: Ticket | None, actor) -> Ticket:
    """Merge ``ticket`` (the duplicate) into ``into`` (the survivor); returns the survivor.

    Both rows are locked in id order, so a merge of A into B and one of B into A at the
    same moment cannot deadlock: the second waits, then finds A or B merged and refuses.
    """
    if not is_agent(actor):
        raise NotPermitted("Only staff can merge tickets.")
    if into is None:
        raise DomainError("Name the ticket to merge this one into.", field="into")
    if into.pk == ticket.pk:
        raise DomainError("A ticket cannot be merged into itself.", field="into")
    locked = {
        row.pk: row
        for row in Ticket.objects.select_for_update()
        .filter(pk__in=[ticket.pk, into.pk])
        .order_by("pk")
    }
    duplicate, survivor = locked[ticket.pk], locked[into.pk]
    if duplicate.merged_into_id:
        raise Conflict(
            f"{duplicate.reference} is already merged into {_reference(duplicate.merged_into_id)}.",
            code="already_merged",
        )
    if survivor.merged_into_id:
        end = _reference(survivor_id(survivor))
        raise DomainError(
            f"{survivor.reference} was itself merged into {end}: merge into {end} instead.",
            field="into",
        )
    if survivor.status == S.CLOSED:
        raise DomainError(
            f"{survivor.reference} is closed: reopen it first, or merge it into this one.",
            field="into",
        )
    _refuse_if_ai_busy(duplicate, survivor)

    # The conversation: every message (internal notes too) with its attachments. The
    # survivor's page orders messages by their time, so the two conversations interleave.
    message_ids = list(duplicate.messages.order_by("created_at", "id").values_list("pk", flat=True))
    Message.objects.filter(pk__in=message_ids).update(ticket=survivor, moved_from=duplicate)

    # People copied on the duplicate, and its requester, hear of the survivor from now on.
    known = {e.lower() for e in survivor.participants.values_list("email", flat=True)}
    known.add((survivor.requester.email or "").lower())
    moved_participants = []
    for participant in duplicate.participants.order_by("created_at", "id"):
        if participant.email.lower() in known:
            continue  # already there: the duplicate keeps its row
        known.add(participant.email.lower())
        moved_participants.append(participant.pk)
    TicketParticipant.objects.filter(pk__in=moved_participants).update(ticket=survivor)
    added_requester = ""
    requester = duplicate.requester
    if requester.email and requester.email.lower() not in known:
        TicketParticipant.objects.create(
            ticket=survivor,
            email=requester.email,
            name=requester.get_full_name()[:200],
            user=requester,
        )
        added_requester = requester.email

    # Tags: the union (the duplicate keeps its own, as they were when it was closed).
    old_tags = sorted(survivor.tags.values_list("name", flat=True))
    new_links = [
        TicketTag(
            ticket=survivor,
            tag_id=link.tag_id,
            added_by=actor,
            added_by_kind=link.added_by_kind,
        )
        for link in duplicate.ticket_tags.exclude(tag__in=survivor.tags.all())
    ]
    TicketTag.objects.bulk_create(new_links)
    if new_links:
        events.tags_changed_event(
            ticket=survivor,
            actor=actor,
            old=old_tags,
            new=sorted(survivor.tags.values_list("name", flat=True)),
        )

    # The duplicate: closed through the status table (its open escalations settled with
    # it), never by a "closed" notice to the customer: the merge notice says it all.
    if duplicate.status != S.CLOSED:
        _settle(duplicate, S.CLOSED, stamp="closed_at", actor=actor, actor_kind=None)
        events.closed_event(ticket=duplicate, actor=actor)
    duplicate.merged_into = survivor
    duplicate.save(update_fields=["merged_into", "updated_at"])
    moved = {"messages_moved": len(message_ids)}
    events.linked_event(
        ticket=duplicate,
        kind=Kind.MERGED_INTO,
        actor=actor,
        other=survivor,
        role="survivor",
        message_ids=message_ids,
        metadata=moved,
    )

    # The survivor keeps its status and SLA clocks; its event, then the one notice.
    events.linked_event(
        ticket=survivor,
        kind=Kind.MERGED,
        actor=actor,
        other=duplicate,
        role="duplicate",
        message_ids=message_ids,
        metadata={
            **moved,
            "participants_moved": len(moved_participants),
            "requester_added": added_requester,
            "tags_added": len(new_links),
        },
    )
    notice = Message.objects.create(
        ticket=survivor,
        sender_kind=SenderKind.SYSTEM,
        author=None,
        body=merge_notice(duplicate=duplicate, survivor=survivor),
    )
    events.message_added_event(ticket=survivor, message=notice)
    survivor.save(update_fields=["updated_at"])

    after_commit("ticket_changed", ticket_id=duplicate.pk)
    # Mailed like a public reply (requester, participants copied) and shown live.
    after_commit("public_reply", ticket_id=survivor.pk, message_id=notice.pk)
    return survivor


@transaction.atomic
def ticket_split(*, ticket: Ticket, message_ids: Iterable[int], actor, subject: str = "") -> Ticket:
    """Move the chosen messages of ``ticket`` to a new ticket; returns the new ticket.

    The new ticket has the same requester, organization, type, priority and channel,
    its own reference and SLA clocks (started now, as for a ticket just opened), the
    first moved message as its description, and the agent who split it as assignee;
    the AI is not asked (people already handle the conversation).
    """
    if not is_agent(actor):
        raise NotPermitted("Only staff can split tickets.")
    try:
        wanted = sorted({int(pk) for pk in message_ids})
    except (TypeError, ValueError):
        raise DomainError("Choose messages of this ticket.", field="messages") from None
    if not wanted:
        raise DomainError("Choose at least one message to split off.", field="messages")
    subject = (subject or "").strip()

    original = _lock(ticket)
    if original.merged_into_id:
        raise Conflict(
            f"{original.reference} was merged into {_reference(survivor_id(original))}: "
            "split messages off that ticket.",
            code="already_merged",
        )
    _refuse_if_ai_busy(original)
    chosen = list(original.messages.filter(pk__in=wanted).order_by("created_at", "id"))
    missing = sorted(set(wanted) - {m.pk for m in chosen})
    if missing:
        raise DomainError(
            f"Not messages of {original.reference}: {', '.join(map(str, missing))}.",
            field="messages",
        )
    stays = original.messages.filter(sender_kind=SenderKind.CUSTOMER, is_internal=False)
    if not stays.exclude(pk__in=wanted).exists():
        raise DomainError(
            f"Leave at least one of the customer's messages on {original.reference}.",
            field="messages",
        )

    now = timezone.now()
    new = Ticket(
        reference=_reference_for(now),
        subject=(subject or f"Split from {original.reference}: {original.subject}")[:200],
        description=chosen[0].body,
        type=original.type,
        priority=original.priority,
        channel=original.channel,
        requester=original.requester,
        organization=original.organization,
        assignee=actor,
        split_from=original,
    )
    _sla_start(new, now)
    new.save(force_insert=True)
    moved = [m.pk for m in chosen]
    Message.objects.filter(pk__in=moved).update(ticket=new, moved_from=original)

    events.linked_event(
        ticket=original,
        kind=Kind.SPLIT,
        actor=actor,
        other=new,
        role="new_ticket",
        message_ids=moved,
    )
    original.save(update_fields=["updated_at"])
    events.ticket_created_event(ticket=new, actor=actor)
    events.linked_event(
        ticket=new,
        kind=Kind.SPLIT_FROM,
        actor=actor,
        other=original,
        role="original",
        message_ids=moved,
    )
    events.assigned_event(ticket=new, actor=actor, old_assignee=None, new_assignee=actor)

    after_commit("ticket_changed", ticket_id=original.pk)
    # Not "ticket_opened": that one sends the ticket to the AI.
    after_commit("ticket_changed", ticket_id=new.pk)
    new.refresh_from_db()
    return new
