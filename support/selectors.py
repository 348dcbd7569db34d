"""Reads of support, scoped to who is asking.

A customer sees their own tickets, or their organization's when they are its admin;
staff see every ticket. Customers never see internal notes, nor the events about them.
The agents' live feed (new, escalated and SLA-at-risk tickets) reads its columns and
counts here too.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404

from core.roles import is_agent, is_manager  # noqa: F401  (re-exported: support's callers)
from support.models import (
    OPEN_STATUSES,
    AnalysisTrace,
    Message,
    SavedReply,
    Ticket,
    TicketChannel,
    TicketEvent,
    TicketStatus,
)


def ticket_list(*, user) -> QuerySet[Ticket]:
    """Tickets ``user`` may see, with what list pages show, in one query."""
    queryset = Ticket.objects.select_related("requester", "organization", "assignee", "team")
    if not user.is_authenticated:
        return queryset.none()
    if is_agent(user):
        return queryset
    profile = getattr(user, "customer_profile", None)
    if profile is not None and profile.is_org_admin and profile.organization_id:
        return queryset.filter(Q(requester=user) | Q(organization_id=profile.organization_id))
    return queryset.filter(requester=user)


def ticket_get(*, user, reference: str) -> Ticket:
    """The ticket if ``user`` may see it; 404 otherwise, so others' tickets stay unknown."""
    try:
        return ticket_list(user=user).get(reference=reference)
    except Ticket.DoesNotExist:
        raise Http404("No such ticket.") from None


def customer_other_tickets(*, ticket: Ticket, limit: int = 10) -> list[Ticket]:
    """The requester's other tickets, newest first (what the AI agent's history tool
    reads); merged-away tickets included, as the customer remembers them."""
    return list(
        Ticket.objects.filter(requester_id=ticket.requester_id)
        .exclude(pk=ticket.pk)
        .only("reference", "subject", "status", "type", "created_at")
        .order_by("-created_at", "-id")[:limit]
    )


def message_list(*, user, ticket: Ticket, after: int | None = None) -> QuerySet[Message]:
    """The conversation ``user`` may read; with ``after``, only messages newer than that id
    (a live page catching up after a reconnect: one ticket's messages are written under
    its row lock, so their ids grow in commit order)."""
    queryset = (
        ticket.messages.select_related("author")
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    )
    if after:
        queryset = queryset.filter(pk__gt=after)
    return queryset if is_agent(user) else queryset.filter(is_internal=False)


def event_list(*, user, ticket: Ticket) -> QuerySet[TicketEvent]:
    queryset = ticket.events.select_related("actor").order_by("created_at", "id")
    return queryset if is_agent(user) else queryset.filter(is_internal=False)


def ai_trace_list(*, user, ticket: Ticket) -> QuerySet[AnalysisTrace]:
    """The AI's decision traces of ``ticket``, newest first: staff only (they hold the
    AI's internal reasoning), nothing for anyone else, even the ticket's requester."""
    queryset = ticket.ai_traces.order_by("-created_at", "-id")
    return queryset if is_agent(user) else queryset.none()


def ticket_with_conversation(*, user, reference: str) -> Ticket:
    """One ticket with its visible messages (and their attachments) prefetched."""
    ticket = ticket_get(user=user, reference=reference)
    messages = message_list(user=user, ticket=ticket)
    return (
        Ticket.objects.select_related("requester", "organization", "assignee", "team")
        .prefetch_related(Prefetch("messages", queryset=messages, to_attr="visible_messages"))
        .get(pk=ticket.pk)
    )


def chat_current(*, user) -> Ticket | None:
    """The customer's chat session to resume: their latest chat ticket not yet closed."""
    return (
        ticket_list(user=user)
        .filter(requester=user, channel=TicketChannel.CHAT)
        .exclude(status=TicketStatus.CLOSED)
        .order_by("-created_at", "-id")
        .first()
    )


# ---- the agents' live feed ---------------------------------------------------------------

FEED_BUCKETS = ("new", "escalated", "at_risk")
FEED_FILTERS = ("all", "mine", "unassigned")
#: Not answered yet: waiting, or in the AI's hands.
UNANSWERED_STATUSES = frozenset(
    {TicketStatus.NEW, TicketStatus.ANALYZING, TicketStatus.AI_RESPONDING}
)


def sla_at_risk_before(now):
    """An open ticket due before this time is at risk (or already breached), whatever
    its calendar: a business-time window starts no later than the wall-clock one."""
    return now + timedelta(hours=settings.HELPDESK_SLA_AT_RISK_HOURS)


def sla_at_risk_filter(now) -> Q:
    """At risk: the remaining business time fell below ``HELPDESK_SLA_AT_RISK_HOURS``
    (``sla_at_risk_at`` passed), or less wall-clock time is left than that (which
    implies it, and also covers due times written without their at-risk instant)."""
    return Q(status__in=sorted(OPEN_STATUSES)) & (
        Q(sla_at_risk_at__lte=now) | Q(sla_due_at__lt=sla_at_risk_before(now))
    )


def feed_bucket_filters(now) -> dict[str, Q]:
    return {
        "new": Q(status__in=sorted(UNANSWERED_STATUSES)),
        "escalated": Q(status=TicketStatus.ESCALATED),
        "at_risk": sla_at_risk_filter(now),
    }


def sla_at_risk(ticket: Ticket, now) -> bool:
    """The same rule as :func:`sla_at_risk_filter`, for one ticket."""
    if not ticket.is_open:
        return False
    if ticket.sla_at_risk_at is not None and ticket.sla_at_risk_at <= now:
        return True
    return ticket.sla_due_at is not None and ticket.sla_due_at < sla_at_risk_before(now)


def feed_buckets_of(ticket: Ticket, now) -> list[str]:
    """The feed columns ``ticket`` belongs in (the same rules as the queries)."""
    buckets = []
    if ticket.status in UNANSWERED_STATUSES:
        buckets.append("new")
    if ticket.status == TicketStatus.ESCALATED:
        buckets.append("escalated")
    if sla_at_risk(ticket, now):
        buckets.append("at_risk")
    return buckets


def feed_matches(*, filter: str, assignee_id: int | None, user_id: int) -> bool:
    if filter == "mine":
        return assignee_id == user_id
    if filter == "unassigned":
        return assignee_id is None
    return True


def feed_tickets(*, user, filter: str, now, limit: int = 25) -> dict[str, list[Ticket]]:
    """Each feed column's tickets: newest first for new ones, soonest due for the rest."""
    queryset = Ticket.objects.open().select_related("requester", "organization", "assignee", "team")
    if filter == "mine":
        queryset = queryset.filter(assignee=user)
    elif filter == "unassigned":
        queryset = queryset.filter(assignee__isnull=True)
    order = {
        "new": ("-created_at", "-id"),
        "escalated": ("sla_due_at", "created_at"),
        "at_risk": ("sla_due_at", "created_at"),
    }
    return {
        bucket: list(queryset.filter(condition).order_by(*order[bucket])[:limit])
        for bucket, condition in feed_bucket_filters(now).items()
    }


def feed_counts(*, now) -> dict:
    """Column counts for every filter in one query: all, unassigned, and per assignee
    (``by_assignee`` keyed by user id as text), so one broadcast serves every agent."""
    rows = (
        Ticket.objects.open()
        .order_by()
        .values("assignee_id")
        .annotate(
            **{
                bucket: Count("pk", filter=condition)
                for bucket, condition in feed_bucket_filters(now).items()
            }
        )
    )
    empty = dict.fromkeys(FEED_BUCKETS, 0)
    counts = {"all": dict(empty), "unassigned": dict(empty), "by_assignee": {}}
    for row in rows:
        numbers = {bucket: row[bucket] for bucket in FEED_BUCKETS}
        for bucket, number in numbers.items():
            counts["all"][bucket] += number
        if row["assignee_id"] is None:
            counts["unassigned"] = numbers
        else:
            counts["by_assignee"][str(row["assignee_id"])] = numbers
    return counts


def feed_counts_for(counts: dict, *, filter: str, user_id: int) -> dict:
    if filter == "mine":
        return counts["by_assignee"].get(str(user_id), dict.fromkeys(FEED_BUCKETS, 0))
    return counts["unassigned"] if filter == "unassigned" else counts["all"]


def saved_reply_list() -> QuerySet[SavedReply]:
    return SavedReply.objects.filter(is_active=True).order_by("title")


def training_examples_similar(vector, *, limit: int = 3, min_similarity: float = 0.5):
    """Approved, PII-free training examples nearest to ``vector`` (cosine, HNSW), each with
    ``similarity``; the agent's few-shot context."""
    from pgvector.django import CosineDistance

    from support.models import TrainingExample

    if vector is None:
        return []
    rows = (
        TrainingExample.objects.ready_for_training()
        .filter(embedding__isnull=False)
        .annotate(distance=CosineDistance("embedding", list(vector)))
        .order_by("distance")
        .only("id", "ticket_type", "anonymized_question", "anonymized_answer", "quality_score")[
            :limit
        ]
    )
    out = []
    for row in rows:
        row.similarity = 1.0 - float(row.distance)
        if row.similarity >= min_similarity:
            out.append(row)
    return out
