"""The ticket's life: one function per action on a ticket (open, reply, assign, edit,
escalate, hand a chat over, resolve, close, reopen, rate, ask the AI again).

Each function runs in one transaction, locks the ticket row (the AI worker and a person
can act at once), checks the status change against ``ALLOWED_TRANSITIONS``, writes its
``TicketEvent`` rows, and schedules side effects only after commit: live updates, emails
and the AI's analysis through ``support.side_effects.after_commit``, other tasks through
``core.outbox.schedule_after_commit``. A function that combines others (a reply that
resolves, a chat handed over) runs them in its one transaction. Illegal actions raise
``DomainError`` / ``Conflict`` / ``NotPermitted`` and change nothing.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import Conflict, DomainError, NotPermitted
from core.outbox import schedule_after_commit
from core.roles import is_agent
from support import custom_fields as cf
from support import events, sla
from support.email.addresses import support_address_for
from support.models import (
    ALLOWED_TRANSITIONS,
    DONE_STATUSES,
    OPEN_STATUSES,
    Attachment,
    CustomerProfile,
    Escalation,
    Message,
    SavedReply,
    Team,
    TeamMembership,
    Ticket,
    TicketChannel,
    TicketPriority,
    TicketSequence,
    TicketStatus,
    TicketType,
)
from support.side_effects import after_commit

__all__ = [
    "AI_ANALYSIS",
    "AI_DRAFT",
    "ALLOWED_ATTACHMENT_TYPES",
    "DEFAULT_SLA_HOURS",
    "AiMetadata",
    "chat_hand_over",
    "message_add",
    "message_reply",
    "saved_reply_apply",
    "saved_reply_render",
    "sla_hours",
    "team_for",
    "ticket_analysis_give_up",
    "ticket_analysis_requeue",
    "ticket_assign",
    "ticket_change_priority",
    "ticket_close",
    "ticket_edit",
    "ticket_escalate",
    "ticket_notification_failed",
    "ticket_open",
    "ticket_rate",
    "ticket_record_ai_assessment",
    "ticket_reopen",
    "ticket_request_ai",
    "ticket_resolve",
    "ticket_route",
    "ticket_set_status",
    "ticket_sla_stamp_breaches",
    "ticket_update",
    "validate_attachments",
]

S = TicketStatus
SenderKind = Message.SenderKind

DEFAULT_SLA_HOURS = sla.DEFAULT_SLA_HOURS


@dataclass(frozen=True)
class AiMetadata:
    """What an AI message cost and was based on (stored on the message)."""

    model: str
    confidence: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: Decimal | None = None
    latency_ms: int | None = None
    article_ids: tuple[int, ...] = ()
    example_ids: tuple[int, ...] = ()
    reasoning: str = ""
    decision: str = ""  # resolve / ask / escalate / draft: what the analysis did


# ======================================================================================
# Helpers
# ======================================================================================


def _lock(ticket: Ticket) -> Ticket:
    """The ticket's row, locked until the transaction ends, with fresh values."""
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def _transition(
    ticket: Ticket, new_status: str, *, actor, actor_kind=None, metadata: dict | None = None
) -> bool:
    """Move to ``new_status`` if the table allows it; False when already there."""
    if ticket.status == new_status:
        return False
    if new_status not in ALLOWED_TRANSITIONS[ticket.status]:
        raise Conflict(
            f"A ticket that is {S(ticket.status).label.lower()} cannot become "
            f"{S(new_status).label.lower()}.",
            code="invalid_transition",
        )
    old = ticket.status
    ticket.status = new_status
    ticket.status_changed_at = timezone.now()
    _sla_on_status(ticket, old, new_status, ticket.status_changed_at)
    events.status_changed_event(
        ticket=ticket,
        actor=actor,
        old=old,
        new=new_status,
        actor_kind=actor_kind,
        metadata=metadata,
    )
    return True


def _human_owned(ticket: Ticket) -> bool:
    """A person has taken this ticket on: it goes back to them, not to the AI."""
    return ticket.assignee_id is not None or ticket.escalations.filter(is_resolved=False).exists()


def survivor_id(ticket: Ticket) -> int:
    """The id of the ticket a merged duplicate lives on in (``merged_into``, followed to
    the end of the chain); the ticket's own id when it was never merged."""
    seen, current, target = set(), ticket.pk, ticket.merged_into_id
    while target and target not in seen:
        seen.add(current)
        current = target
        target = Ticket.objects.filter(pk=current).values_list("merged_into_id", flat=True).first()
    return current


def _reference_for(now) -> str:
    day = timezone.localdate(now)
    table = TicketSequence._meta.db_table
    with connection.cursor() as cursor:
        # One atomic upsert: concurrent openings each get their own number.
        cursor.execute(
            f"""INSERT INTO {table} (day, last_number) VALUES (%s, 1)
                ON CONFLICT (day) DO UPDATE SET last_number = {table}.last_number + 1
                RETURNING last_number""",  # noqa: S608 (table name from the model)
            [day],
        )
        number = cursor.fetchone()[0]
    return f"HD-{day:%Y%m%d}-{number:04d}"


def sla_hours(organization, priority: str) -> int:
    """Resolution hours of the policy that applies to ``organization`` (own → plan →
    default → built-in), rounded down (kept for callers that count in hours)."""
    policy = sla.policy_for_organization(organization)
    return int(sla.targets_for(policy, priority).resolution.total_seconds() // 3600)


# ======================================================================================
# SLA clocks (see ``Ticket``): every service that changes what they depend on keeps
# them right, in its transaction; business time comes from ``support.sla``.
# ======================================================================================

#: The fields the clocks write (added to the ``update_fields`` of status changes).
SLA_FIELDS = sla.CLOCK_FIELDS


def _sla_context(ticket: Ticket, priority: str | None = None) -> sla.Clock:
    """The ticket's clock rules: its policy's business hours and targets (for
    ``priority``), and the at-risk window."""
    priority = priority or ticket.priority
    organization = ticket.organization if ticket.organization_id else None
    policy = sla.policy_for_organization(organization, priority=priority)
    return sla.Clock(
        hours=sla.calendar_for_policy(policy),
        targets=sla.targets_for(policy, priority),
        window=timedelta(hours=settings.HELPDESK_SLA_AT_RISK_HOURS),
    )


def _sla_start(ticket: Ticket, now) -> None:
    _sla_context(ticket).start(ticket, now)


def _sla_on_status(ticket: Ticket, old: str, new: str, now) -> None:
    if sla.Clock.status_matters(old, new):
        _sla_context(ticket).status_changed(ticket, old, new, now)


def _sla_on_message(ticket: Ticket, message: Message) -> None:
    public = message.is_public_reply
    from_customer = message.sender_kind == SenderKind.CUSTOMER and not message.is_internal
    if sla.Clock.message_matters(ticket, public_reply=public, from_customer=from_customer):
        _sla_context(ticket).message_added(
            ticket, message.created_at, public_reply=public, from_customer=from_customer
        )


def _sla_reprioritize(ticket: Ticket, old_priority: str) -> None:
    _sla_context(ticket).reprioritized(ticket, _sla_context(ticket, old_priority).targets)


@transaction.atomic
def ticket_sla_stamp_breaches(*, now=None, limit: int = 1000) -> list[int]:
    """Stamp ``sla_breached_at`` on open tickets whose nearest due time has passed (the
    minute beat); returns their ids. Safe to run twice."""
    now = now or timezone.now()
    ids = list(
        Ticket.objects.filter(
            status__in=OPEN_STATUSES, sla_due_at__lt=now, sla_breached_at__isnull=True
        )
        .order_by("sla_due_at")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        Ticket.objects.filter(pk__in=ids, sla_breached_at__isnull=True).update(
            sla_breached_at=F("sla_due_at")
        )
    return ids


def _choice(value: str, choices, field: str) -> str:
    if value not in choices.values:
        raise DomainError(f"“{value}” is not one of: {', '.join(choices.values)}.", field=field)
    return value


# ======================================================================================
# Attachments
# ======================================================================================

ALLOWED_ATTACHMENT_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "text/csv",
        "application/json",
        "application/zip",
    }
)


def validate_attachments(files: Iterable[UploadedFile]) -> list[UploadedFile]:
    """Refuse files that are too many, too large or of a type we do not store."""
    files = list(files)
    if len(files) > settings.HELPDESK_ATTACHMENT_MAX_FILES:
        raise DomainError(
            f"Attach at most {settings.HELPDESK_ATTACHMENT_MAX_FILES} files.", field="attachments"
        )
    limit = settings.HELPDESK_ATTACHMENT_MAX_BYTES
    for upload in files:
        if upload.size > limit:
            raise DomainError(
                f"{upload.name} is {upload.size // 1024} KB; the limit is {limit // 1024} KB.",
                field="attachments",
            )
        # The browser's content type is not trusted: the file name decides.
        guessed = mimetypes.guess_type(upload.name)[0] or "application/octet-stream"
        if guessed not in ALLOWED_ATTACHMENT_TYPES:
            raise DomainError(
                f"{upload.name}: files of type {guessed} are not accepted "
                "(images, PDF, text, CSV, JSON or ZIP).",
                field="attachments",
            )
    return files


def _store_attachments(message: Message, files: list[UploadedFile]) -> None:
    for upload in files:
        Attachment.objects.create(
            message=message,
            file=upload,
            filename=upload.name[:255],
            content_type=mimetypes.guess_type(upload.name)[0] or "application/octet-stream",
            size=upload.size,
        )


# ======================================================================================
# Opening and conversation
# ======================================================================================


@transaction.atomic
def ticket_open(
    *,
    requester,
    subject: str,
    description: str,
    type: str = TicketType.GENERAL,
    priority: str = TicketPriority.NORMAL,
    channel: str = TicketChannel.WEB,
    attachments: Iterable[UploadedFile] = (),
    custom_fields: dict | None = None,
    opened_by=None,
) -> Ticket:
    """Open a ticket for ``requester``; its description is the first message.

    ``custom_fields`` (a form or the API; None where the door asks none, e.g. email):
    values checked against the definitions (only the customer-editable fields unless
    ``opened_by``, staff opening it for the requester, is an agent); the customer-editable
    fields required for ``type`` must be there."""
    subject, description = (subject or "").strip(), (description or "").strip()
    if not subject:
        raise DomainError("Say in a few words what this is about.", field="subject")
    if not description:
        raise DomainError("Describe the problem or question.", field="description")
    _choice(type, TicketType, "type")
    _choice(priority, TicketPriority, "priority")
    _choice(channel, TicketChannel, "channel")
    files = validate_attachments(attachments)
    values = {}
    if custom_fields is not None:
        definitions = cf.active_fields()
        values = cf.clean_values(
            custom_fields,
            fields=definitions,
            ticket_type=type,
            for_customer=not is_agent(opened_by or requester),
        )
        missing = cf.missing_required(type, values, definitions, for_customer=True)
        if missing:
            raise cf.required_error(type, missing)

    now = timezone.now()
    profile = (
        CustomerProfile.objects.select_related("organization__sla_policy")
        .filter(user=requester)
        .first()
    )
    organization = profile.organization if profile else None
    ticket = Ticket(
        reference=_reference_for(now),
        subject=subject[:200],
        description=description,
        type=type,
        priority=priority,
        channel=channel,
        requester=requester,
        organization=organization,
        custom_fields=values,
    )
    _sla_start(ticket, now)
    ticket.save(force_insert=True)
    message = Message.objects.create(
        ticket=ticket, sender_kind=SenderKind.CUSTOMER, author=requester, body=description
    )
    _store_attachments(message, files)
    events.ticket_created_event(
        ticket=ticket, actor=requester, actor_kind=events.TicketEvent.ActorKind.CUSTOMER
    )
    written = events.written()
    after_commit("ticket_opened", ticket_id=ticket.pk)
    if events.written() == written:
        return ticket  # no rule changed it (every change writes its audit event)
    # Rules changed it already (routed, escalated): answer with what is stored, keeping
    # the requester and organization loaded above when they are still its own (the
    # doors answer with them; refresh_from_db drops them).
    ticket.refresh_from_db()
    if ticket.requester_id == requester.pk:
        ticket.requester = requester
    if organization is not None and ticket.organization_id == organization.pk:
        ticket.organization = organization
    return ticket


@transaction.atomic
def message_add(
    *,
    ticket: Ticket,
    author,
    body: str,
    sender_kind: str | None = None,
    is_internal: bool = False,
    attachments: Iterable[UploadedFile] = (),
    ai: AiMetadata | None = None,
) -> Message:
    """Add a message to the conversation and move the ticket along.

    A customer's reply on a resolved ticket reopens it; a closed ticket takes no more
    customer replies. An agent's public reply leaves the ticket awaiting the customer.
    The first public reply of an agent or the AI is the ticket's first response.
    """
    body = (body or "").strip()
    if not body:
        raise DomainError("Write a message.", field="body")
    if sender_kind is None:
        sender_kind = SenderKind.AGENT if is_agent(author) else SenderKind.CUSTOMER
    if is_internal and sender_kind == SenderKind.CUSTOMER:
        raise NotPermitted("Customers cannot write internal notes.")
    if sender_kind == SenderKind.CUSTOMER and is_agent(author):
        raise NotPermitted("Staff reply as agents, not as the customer.")
    files = validate_attachments(attachments)

    ticket = _lock(ticket)
    if sender_kind == SenderKind.CUSTOMER and ticket.merged_into_id:
        # A merged duplicate stays closed: the customer's reply goes on to its survivor.
        ticket = _lock(Ticket(pk=survivor_id(ticket)))
    if sender_kind == SenderKind.CUSTOMER:
        if ticket.status == S.CLOSED:
            raise Conflict("This ticket is closed. Please open a new ticket.", code="ticket_closed")
        if ticket.status == S.RESOLVED:
            _reopen(ticket, actor=author, reason="customer replied")
        elif ticket.status == S.AWAITING_CUSTOMER:
            _transition(ticket, S.ESCALATED if _human_owned(ticket) else S.NEW, actor=author)

    message = Message.objects.create(
        ticket=ticket,
        sender_kind=sender_kind,
        author=author,
        body=body,
        is_internal=is_internal,
        **(_ai_fields(ai) if ai else {}),
    )
    _store_attachments(message, files)
    events.message_added_event(ticket=ticket, message=message)

    _sla_on_message(ticket, message)
    if message.is_public_reply:
        if ticket.first_response_at is None:
            ticket.first_response_at = message.created_at
        if sender_kind == SenderKind.AGENT and ticket.status in OPEN_STATUSES:
            _transition(ticket, S.AWAITING_CUSTOMER, actor=author)
    ticket.save()
    if message.is_public_reply:
        after_commit("public_reply", ticket_id=ticket.pk, message_id=message.pk)
    elif sender_kind == SenderKind.CUSTOMER:
        after_commit("customer_replied", ticket_id=ticket.pk, message_id=message.pk)
    else:  # an internal note, a system message: shown live, nobody is emailed
        after_commit("message_added", ticket_id=ticket.pk, message_id=message.pk)
    return message


def _ai_fields(ai: AiMetadata) -> dict:
    return {
        "ai_model": ai.model,
        "ai_confidence": ai.confidence,
        "input_tokens": ai.input_tokens,
        "output_tokens": ai.output_tokens,
        "cost_usd": ai.cost_usd,
        "latency_ms": ai.latency_ms,
        "article_ids": list(ai.article_ids),
        "example_ids": list(ai.example_ids),
        "ai_reasoning": ai.reasoning,
        "ai_decision": ai.decision,
    }


@transaction.atomic
def message_reply(
    *,
    ticket: Ticket,
    author,
    body: str,
    is_internal: bool = False,
    attachments: Iterable[UploadedFile] = (),
    resolve: bool = False,
) -> Message:
    """The agent workspace's reply box: a reply or an internal note and, with
    ``resolve``, the ticket resolved with the reply: all or nothing, so a ticket that
    cannot be resolved (already resolved, closed) keeps no reply either."""
    if resolve and is_internal:
        raise DomainError("An internal note does not resolve the ticket.", field="resolve")
    message = message_add(
        ticket=ticket, author=author, body=body, is_internal=is_internal, attachments=attachments
    )
    if resolve:
        ticket_resolve(ticket=message.ticket, actor=author)
    return message


# ======================================================================================
# Placeholders of saved replies
# ======================================================================================

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\.([a-z_]+)\s*\}\}")


def saved_reply_render(saved_reply: SavedReply, *, ticket: Ticket, agent) -> str:
    """Fill in the allowed placeholders; unknown ones stay as written, so a typo shows."""
    customer = ticket.requester
    values = {
        ("customer", "first_name"): customer.first_name or customer.get_username(),
        ("customer", "last_name"): customer.last_name,
        ("customer", "email"): customer.email,
        ("ticket", "reference"): ticket.reference,
        ("ticket", "subject"): ticket.subject,
        ("agent", "first_name"): agent.first_name or agent.get_username(),
    }
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.groups(), m.group(0))), saved_reply.body)


@transaction.atomic
def saved_reply_apply(*, ticket: Ticket, saved_reply: SavedReply, agent) -> Message:
    """Send a saved reply as the agent, then apply its status change if it has one."""
    if not saved_reply.is_active:
        raise DomainError("This saved reply is archived.", field="saved_reply")
    message = message_add(
        ticket=ticket,
        author=agent,
        body=saved_reply_render(saved_reply, ticket=ticket, agent=agent),
    )
    if saved_reply.new_status == S.RESOLVED:
        ticket_resolve(ticket=ticket, actor=agent)
    elif saved_reply.new_status == S.CLOSED:
        ticket_close(ticket=ticket, actor=agent)
    return message


# ======================================================================================
# Status actions
# ======================================================================================


@transaction.atomic
def ticket_set_status(
    *, ticket: Ticket, status: str, actor=None, actor_kind=None, metadata: dict | None = None
) -> Ticket:
    """A plain status move (the AI pipeline's analyzing / ai_responding steps)."""
    _choice(status, TicketStatus, "status")
    ticket = _lock(ticket)
    if _transition(ticket, status, actor=actor, actor_kind=actor_kind, metadata=metadata):
        ticket.save(update_fields=["status", "status_changed_at", *SLA_FIELDS, "updated_at"])
        after_commit("ticket_changed", ticket_id=ticket.pk)
    return ticket


@transaction.atomic
def ticket_record_ai_assessment(
    *, ticket: Ticket, confidence: float, sentiment: float | None
) -> Ticket:
    """The AI's latest confidence and reading of the customer's mood (no event: they are
    measurements, shown on the ticket and rolled up by analytics)."""
    ticket = _lock(ticket)
    ticket.ai_confidence = max(0.0, min(1.0, confidence))
    ticket.sentiment = None if sentiment is None else max(-1.0, min(1.0, sentiment))
    ticket.save(update_fields=["ai_confidence", "sentiment", "updated_at"])
    return ticket


@transaction.atomic
def ticket_assign(*, ticket: Ticket, assignee, actor) -> Ticket:
    """Give the ticket to ``assignee`` (a staff user), or to nobody with None."""
    if assignee is not None and not is_agent(assignee):
        raise DomainError("Tickets can only be assigned to active staff.", field="assignee")
    ticket = _lock(ticket)
    if ticket.assignee_id == getattr(assignee, "pk", None):
        return ticket
    old = ticket.assignee
    ticket.assignee = assignee
    ticket.save(update_fields=["assignee", "updated_at"])
    events.assigned_event(ticket=ticket, actor=actor, old_assignee=old, new_assignee=assignee)
    if assignee is not None and assignee != actor:
        after_commit("assigned", ticket_id=ticket.pk, user_id=assignee.pk)
    else:  # taken or dropped by the agent themselves: no email, but the pages follow
        after_commit("ticket_changed", ticket_id=ticket.pk)
    return ticket


@transaction.atomic
def ticket_change_priority(*, ticket: Ticket, priority: str, actor, actor_kind=None) -> Ticket:
    """Change the priority; the SLA due time follows from the new priority."""
    _choice(priority, TicketPriority, "priority")
    ticket = _lock(ticket)
    if ticket.priority == priority:
        return ticket
    old = ticket.priority
    ticket.priority = priority
    _sla_reprioritize(ticket, old)
    ticket.save(update_fields=["priority", *SLA_FIELDS, "updated_at"])
    events.priority_changed_event(
        ticket=ticket, actor=actor, old=old, new=priority, actor_kind=actor_kind
    )
    after_commit("ticket_changed", ticket_id=ticket.pk)  # the SLA due time moved
    return ticket


@transaction.atomic
def ticket_update(
    *, ticket: Ticket, actor, subject: str | None = None, type: str | None = None, actor_kind=None
) -> Ticket:
    """Correct the subject or the type (triage does it too); each change is an event."""
    ticket = _lock(ticket)
    changed = []
    if subject is not None:
        subject = subject.strip()
        if not subject:
            raise DomainError("The subject cannot be empty.", field="subject")
        if subject != ticket.subject:
            events.field_changed_event(
                ticket=ticket,
                actor=actor,
                field="subject",
                old=ticket.subject,
                new=subject,
                actor_kind=actor_kind,
            )
            ticket.subject = subject[:200]
            changed.append("subject")
    if type is not None and type != ticket.type:
        _choice(type, TicketType, "type")
        events.field_changed_event(
            ticket=ticket,
            actor=actor,
            field="type",
            old=ticket.type,
            new=type,
            actor_kind=actor_kind,
        )
        ticket.type = type
        changed.append("type")
    if changed:
        ticket.save(update_fields=[*changed, "updated_at"])
        after_commit("ticket_changed", ticket_id=ticket.pk)
    return ticket


@transaction.atomic
def ticket_edit(
    *,
    ticket: Ticket,
    actor,
    subject: str | None = None,
    type: str | None = None,
    priority: str | None = None,
    custom_fields: dict | None = None,
    tags: Iterable | None = None,
    actor_kind=None,
) -> Ticket:
    """Correct the subject, the type and the priority at once (the API's PATCH): every
    value is checked before anything changes, and the changes commit together, with the
    events ``ticket_change_priority`` and ``ticket_update`` write (None: left as it is).
    ``custom_fields``: some values set or removed (``ticket_set_custom_fields``);
    ``tags``: the ticket's new set of tags (``ticket_set_tags``)."""
    from support.services.custom_fields import ticket_set_custom_fields
    from support.services.tags import ticket_set_tags

    if priority is not None:
        _choice(priority, TicketPriority, "priority")
    if type is not None:
        _choice(type, TicketType, "type")
    if subject is not None and not subject.strip():
        raise DomainError("The subject cannot be empty.", field="subject")
    if priority is not None:
        ticket = ticket_change_priority(
            ticket=ticket, priority=priority, actor=actor, actor_kind=actor_kind
        )
    if subject is not None or type is not None:
        ticket = ticket_update(
            ticket=ticket, actor=actor, subject=subject, type=type, actor_kind=actor_kind
        )
    if custom_fields is not None:
        ticket = ticket_set_custom_fields(
            ticket=ticket, values=custom_fields, actor=actor, actor_kind=actor_kind
        )
    if tags is not None:
        ticket = ticket_set_tags(ticket=ticket, tags=tags, actor=actor, actor_kind=actor_kind)
    return ticket


def _escalation_team(ticket: Ticket, topic: str) -> Team | None:
    """Where an escalation goes: the team that handles its topic (security, legal …);
    else, for a ticket that came by email, the team of the support address it was
    written to (billing@ → Billing); else the team for its type, else the general queue."""
    if topic:
        handling = Team.objects.filter(handles__contains=[topic]).order_by("pk").first()
        if handling is not None:
            return handling
    if ticket.channel == TicketChannel.EMAIL:
        first = ticket.inbound_emails.order_by("received_at", "pk").first()
        address = support_address_for(list(first.recipients)) if first else None
        if address is not None and address.team_id is not None:
            return address.team
    return team_for(topic or ticket.type)


def team_for(route_key: str) -> Team | None:
    """The team that handles a ticket type or topic, else the general queue."""
    return (
        Team.objects.filter(handles__contains=[route_key]).order_by("pk").first()
        or Team.objects.filter(is_default=True).first()
    )


def _round_robin_pick(team: Team, now):
    """The available member assigned least recently; the row lock keeps two escalations
    at once from picking the same person."""
    membership = (
        TeamMembership.objects.select_for_update(skip_locked=True)
        .filter(team=team, is_available=True, user__is_active=True, user__is_staff=True)
        .order_by(F("last_assigned_at").asc(nulls_first=True), "pk")
        .select_related("user")
        .first()
    )
    if membership is None:
        return None
    membership.last_assigned_at = now
    membership.save(update_fields=["last_assigned_at"])
    return membership.user


@transaction.atomic
def ticket_route(*, ticket: Ticket, team: Team, actor=None, round_robin: bool = False) -> Ticket:
    """Give the ticket to ``team`` (an automation rule, an agent); with ``round_robin``,
    also to the team's available member assigned least recently (none available: the
    ticket stays with the team). A team change is an event, and so is the assignment."""
    if team is None:
        raise DomainError("Choose a team.", field="team")
    ticket = _lock(ticket)
    changed = []
    if ticket.team_id != team.pk:
        events.field_changed_event(
            ticket=ticket,
            actor=actor,
            field="team",
            old=ticket.team.name if ticket.team_id else "",
            new=team.name,
        )
        ticket.team = team
        changed.append("team")
    assignee = _round_robin_pick(team, timezone.now()) if round_robin else None
    if assignee is not None and assignee.pk != ticket.assignee_id:
        events.assigned_event(
            ticket=ticket, actor=actor, old_assignee=ticket.assignee, new_assignee=assignee
        )
        ticket.assignee = assignee
        changed.append("assignee")
    if changed:
        ticket.save(update_fields=[*changed, "updated_at"])
        if "assignee" in changed:
            after_commit("assigned", ticket_id=ticket.pk, user_id=assignee.pk)
        else:
            after_commit("ticket_changed", ticket_id=ticket.pk)
    return ticket


@transaction.atomic
def ticket_escalate(
    *,
    ticket: Ticket,
    kind: str,
    reason: str,
    actor=None,
    actor_kind=None,
    topic: str = "",
    ai_attempt: str = "",
) -> Escalation:
    """Hand the ticket to people: route it to a team, maybe assign a member, notify."""
    _choice(kind, Escalation.Kind, "kind")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Say why the ticket needs a person.", field="reason")
    ticket = _lock(ticket)
    if ticket.status in DONE_STATUSES:
        raise Conflict("Reopen the ticket before escalating it.", code="invalid_transition")
    now = timezone.now()
    team = _escalation_team(ticket, topic)
    assignee = ticket.assignee
    if assignee is None and team is not None and team.round_robin:
        assignee = _round_robin_pick(team, now)
    escalation = Escalation.objects.create(
        ticket=ticket,
        kind=kind,
        reason=reason,
        topic=topic,
        ai_attempt=ai_attempt,
        team=team,
        assignee=assignee,
        created_by=actor,
    )
    _transition(
        ticket, S.ESCALATED, actor=actor, actor_kind=actor_kind, metadata={"escalation_kind": kind}
    )
    if assignee is not None and ticket.assignee_id != assignee.pk:
        events.assigned_event(
            ticket=ticket,
            actor=actor,
            old_assignee=None,
            new_assignee=assignee,
            actor_kind=actor_kind,
        )
        ticket.assignee = assignee
    ticket.team = team or ticket.team
    ticket.save(
        update_fields=["status", "status_changed_at", "assignee", "team", *SLA_FIELDS, "updated_at"]
    )
    events.escalated_event(ticket=ticket, actor=actor, escalation=escalation, actor_kind=actor_kind)
    after_commit("escalated", ticket_id=ticket.pk, escalation_id=escalation.pk)
    return escalation


@transaction.atomic
def chat_hand_over(*, ticket: Ticket, actor, reason: str = "") -> Escalation:
    """The chat's "talk to a human": the customer hands their chat to people. A resolved
    chat is reopened first (the AI's answer did not settle it after all), then escalated
    as ``customer_requested``; a chat people already have is refused."""
    ticket = _lock(ticket)
    if actor is None or actor.pk != ticket.requester_id:
        raise NotPermitted("Only the customer of this chat can ask for a person.")
    if ticket.status == S.ESCALATED:
        raise DomainError("A person from the team already has this chat.", code="already_escalated")
    if ticket.status == S.RESOLVED:
        ticket = ticket_reopen(
            ticket=ticket, actor=actor, reason="the customer asked for a person in the chat"
        )
    return ticket_escalate(
        ticket=ticket,
        kind=Escalation.Kind.CUSTOMER_REQUESTED,
        reason=(reason or "").strip() or "The customer asked for a person in the chat.",
        actor=actor,
    )


def _settle(ticket: Ticket, status: str, *, stamp: str, actor, actor_kind) -> Ticket:
    """Resolve or close (ticket locked): stamp the time, settle open escalations."""
    if ticket.status == status:
        raise Conflict(
            f"This ticket is already {S(status).label.lower()}.", code="invalid_transition"
        )
    now = timezone.now()
    _transition(ticket, status, actor=actor, actor_kind=actor_kind)
    setattr(ticket, stamp, now)
    ticket.save(update_fields=["status", "status_changed_at", stamp, *SLA_FIELDS, "updated_at"])
    ticket.escalations.filter(is_resolved=False).update(is_resolved=True, resolved_at=now)
    return ticket


@transaction.atomic
def ticket_resolve(*, ticket: Ticket, actor, actor_kind=None) -> Ticket:
    """Mark the ticket resolved; open escalations are settled with it. An agent
    resolves only once the team's required custom fields are filled in."""
    ticket = _lock(ticket)
    if (actor_kind or events.actor_kind_of(actor)) == events.TicketEvent.ActorKind.AGENT:
        cf.check_resolvable(ticket)
    ticket = _settle(ticket, S.RESOLVED, stamp="resolved_at", actor=actor, actor_kind=actor_kind)
    events.resolved_event(ticket=ticket, actor=actor, actor_kind=actor_kind)
    after_commit("resolved", ticket_id=ticket.pk)
    return ticket


@transaction.atomic
def ticket_close(*, ticket: Ticket, actor, actor_kind=None) -> Ticket:
    ticket = _settle(_lock(ticket), S.CLOSED, stamp="closed_at", actor=actor, actor_kind=actor_kind)
    events.closed_event(ticket=ticket, actor=actor, actor_kind=actor_kind)
    after_commit("ticket_changed", ticket_id=ticket.pk)
    return ticket


def _reopen(ticket: Ticket, *, actor, reason: str) -> None:
    """Back to work (ticket already locked): to its people if it had some, else new."""
    if ticket.status not in DONE_STATUSES:
        raise Conflict(
            "Only a resolved or closed ticket can be reopened.", code="invalid_transition"
        )
    if ticket.merged_into_id:
        raise Conflict(
            "This ticket was merged into another one: continue the conversation there.",
            code="merged",
        )
    target = S.ESCALATED if ticket.assignee_id is not None else S.NEW
    _transition(ticket, target, actor=actor)
    ticket.resolved_at = None
    ticket.closed_at = None
    ticket.reopened_count += 1
    # The rating was for the outcome that did not last; the next one gets rated anew.
    ticket.satisfaction_rating = None
    ticket.satisfaction_comment = ""
    ticket.rated_at = None
    events.reopened_event(ticket=ticket, actor=actor, reason=reason)


@transaction.atomic
def ticket_reopen(*, ticket: Ticket, actor, reason: str = "reopened by an agent") -> Ticket:
    ticket = _lock(ticket)
    _reopen(ticket, actor=actor, reason=reason)
    ticket.save()
    after_commit("ticket_changed", ticket_id=ticket.pk)
    return ticket


@transaction.atomic
def ticket_rate(*, ticket: Ticket, actor, rating, comment: str = "") -> Ticket:
    """The requester rates the outcome (CSAT 1–5) once the ticket is resolved."""
    try:
        rating = int(rating)
    except (TypeError, ValueError):
        raise DomainError("Choose a rating from 1 to 5.", field="rating") from None
    if not 1 <= rating <= 5:
        raise DomainError("Choose a rating from 1 to 5.", field="rating")
    ticket = _lock(ticket)
    if actor is None or actor.pk != ticket.requester_id:
        raise NotPermitted("Only the person who opened the ticket can rate it.")
    if ticket.status not in DONE_STATUSES:
        raise Conflict("A ticket can be rated once it is resolved.", code="not_resolved")
    if ticket.satisfaction_rating is not None:
        raise Conflict("You have already rated this ticket.", code="already_rated")
    ticket.satisfaction_rating = rating
    ticket.satisfaction_comment = (comment or "").strip()[:2000]
    ticket.rated_at = timezone.now()
    ticket.save(
        update_fields=["satisfaction_rating", "satisfaction_comment", "rated_at", "updated_at"]
    )
    events.rated_event(ticket=ticket, actor=actor, rating=rating)
    after_commit("rated", ticket_id=ticket.pk)
    return ticket


# ======================================================================================
# The AI agent, asked again
# ======================================================================================

AI_ANALYSIS, AI_DRAFT = "analysis", "draft"


@transaction.atomic
def ticket_request_ai(*, ticket: Ticket, actor) -> str:
    """An agent asks the AI again ("Re-run AI"). A new ticket nobody has taken is
    analyzed anew (the AI may answer the customer); any other gets the AI's draft as an
    internal note for the people on it. Returns ``AI_ANALYSIS`` or ``AI_DRAFT``.

    Writes no event of its own: the request changes nothing on the ticket, and what the
    AI then does (a status change, the draft note) writes its events.
    """
    if not is_agent(actor):
        raise NotPermitted("Only staff can ask the AI again.")
    ticket = _lock(ticket)
    if ticket.status == S.NEW and ticket.assignee_id is None:
        schedule_after_commit("support.tasks.analyze_ticket", ticket.pk)
        return AI_ANALYSIS
    schedule_after_commit("support.tasks.draft_answer", ticket.pk)
    return AI_DRAFT


@transaction.atomic
def ticket_analysis_give_up(*, ticket_id: int, reason: str) -> str:
    """The analysis of a ticket did not finish (it failed, or it is stuck): escalate it
    as "AI unavailable", unless a person has moved it on meanwhile. Returns
    ``"escalated"`` or ``"superseded"``."""
    ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
    if ticket.status not in (S.ANALYZING, S.AI_RESPONDING):
        return "superseded"  # a person has it already
    ticket_escalate(
        ticket=ticket,
        kind=Escalation.Kind.AI_UNAVAILABLE,
        reason=reason[:1000],
        actor_kind=events.TicketEvent.ActorKind.AI,
    )
    return "escalated"


@transaction.atomic
def ticket_analysis_requeue(*, ticket_id: int) -> bool:
    """Queue the AI's analysis again for a new ticket whose analysis never started (the
    stuck-ticket sweep); False when the ticket is no longer new."""
    if not Ticket.objects.filter(pk=ticket_id, status=S.NEW).exists():
        return False
    schedule_after_commit("support.tasks.analyze_ticket", ticket_id)
    return True


# ======================================================================================
# Notifications
# ======================================================================================


@transaction.atomic
def ticket_notification_failed(*, ticket_id: int, effect: str, error: str, attempts: int):
    """Record on the ticket that an email about ``effect`` was given up on, so people see
    it (the outbox item shows the same error); returns the event, or None without ticket."""
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    if ticket is None:
        return None
    return events.notification_failed_event(
        ticket=ticket, effect=effect, error=error, attempts=attempts
    )
